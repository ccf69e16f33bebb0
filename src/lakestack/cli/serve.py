"""``lakestack serve``: the target's model serving endpoints over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lakestack.cli.common import bundle_options, command, open_workspace

if TYPE_CHECKING:
    from lakestack.console import Console

__all__ = ["serve"]


@click.command("serve")
@click.option("--endpoint", default=None, help="Serve only this endpoint (name or resource key).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes sharing the port.",
)
@bundle_options
@command
def serve(
    console: Console,
    endpoint: str | None,
    host: str,
    port: int,
    workers: int,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Serve the target's model_serving_endpoints until stopped (Ctrl-C or SIGTERM).

    Routes: POST /serving-endpoints/<name>/invocations (weighted routes),
    /serving-endpoints/<name>/served-entities/<entity>/invocations, and with one endpoint
    MLflow's POST /invocations; GET /ping, /health, /version, /metrics; POST /-/reload.
    """
    with open_workspace(console, target, variables) as ws:
        names = [e.name for e in ws.bundle.resources.model_serving_endpoints.values()]
        shown = endpoint or ", ".join(names)
        console.info(f"Serving {shown} on http://{host}:{port} ({workers} worker(s))")
        ws.serve(endpoint=endpoint, host=host, port=port, workers=workers)
        console.info("Server stopped")
