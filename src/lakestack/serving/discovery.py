"""Find running ``lakestack serve`` processes of a workspace and ask them to reload.

Kept apart from the server so the deploy task can call it without importing the web stack.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerInfo", "reload_servers", "running_servers", "tokens_from"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerInfo:
    """A running server, as its file under ``<workspace root>/serving/`` describes it."""

    endpoint: str
    host: str
    port: int
    pid: int
    models: list[str]
    tokens_env: str | None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def tokens_from(env: str | None) -> tuple[bytes, ...]:
    """The bearer tokens in the environment variable ``env`` (comma-separated)."""
    if not env:
        return ()
    return tuple(t.strip().encode() for t in os.environ.get(env, "").split(",") if t.strip())


def running_servers(workspace_root: Path) -> list[ServerInfo]:
    """The servers announced under ``<workspace root>/serving/`` whose process is alive."""
    found = []
    for path in sorted((workspace_root / "serving").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            info = ServerInfo(
                endpoint=str(data["endpoint"]),
                host=str(data["host"]),
                port=int(data["port"]),
                pid=int(data["pid"]),
                models=[str(m) for m in data.get("models", [])],
                tokens_env=data.get("tokens_env"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(info.pid):
            found.append(info)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reload_servers(workspace_root: Path, model_name: str, *, timeout: float = 30.0) -> list[str]:
    """Ask every running server that serves ``model_name`` to re-read its aliases now.

    A server that cannot be reached is skipped (it follows the alias at its next poll).

    Returns:
        The endpoints that answered.
    """
    done = []
    for server in running_servers(workspace_root):
        if model_name not in server.models:
            continue
        request = urllib.request.Request(f"{server.url}/-/reload", data=b"", method="POST")
        token = next(iter(tokens_from(server.tokens_env)), None)
        if token:
            request.add_header("Authorization", f"Bearer {token.decode()}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            done.append(server.endpoint)
        except (urllib.error.URLError, OSError) as exc:
            _log.warning("endpoint %s at %s did not reload: %s", server.endpoint, server.url, exc)
    return done
