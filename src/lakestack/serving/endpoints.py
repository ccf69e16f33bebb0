"""Endpoints and their served entities, and the background work that keeps them current.

An entity serves a fixed model version or follows an alias. :class:`ModelSwitcher` loads every
entity's model before the server reports healthy, then polls the aliases (every
``alias_poll_seconds``, and at once when asked through ``/-/reload``): a moved alias has its new
version loaded on a thread while the old one keeps answering, and the swap is one reference
assignment on the event loop, so no request fails and none meets a half-loaded model.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakestack.errors import LakestackError, UsageError
from lakestack.serving.batching import Batcher
from lakestack.serving.models import ServedModel, load_served_model

if TYPE_CHECKING:
    from lakestack.bundle.specs.serving import ModelServingEndpointSpec
    from lakestack.bundle.specs.settings import ServingSpec
    from lakestack.registry import ModelRegistry

__all__ = ["Endpoint", "ModelSwitcher", "ServedEntity", "build_endpoints"]

_log = logging.getLogger(__name__)


class ServedEntity:
    """One served entity of an endpoint: a model version, or the version an alias points at.

    Args:
        endpoint: The endpoint's name.
        name: The entity's served name (routes and the direct route use it).
        model_name: The registered model.
        version: The fixed version, or None for an alias-bound entity.
        alias: The alias followed, or None.
        settings: The server's settings (batch sizes).
    """

    def __init__(
        self,
        endpoint: str,
        name: str,
        model_name: str,
        *,
        version: int | None,
        alias: str | None,
        settings: ServingSpec,
    ) -> None:
        self.endpoint = endpoint
        self.name = name
        self.model_name = model_name
        self.version = version
        self.alias = alias
        self.header = name.encode("latin-1", "replace")  # the value of ENTITY_HEADER
        self.model: ServedModel | None = None
        self.error: str | None = None
        self.batcher = Batcher(
            self._current,
            max_rows=settings.max_batch_rows,
            wait_seconds=settings.batch_wait_ms / 1000,
        )

    def _current(self) -> ServedModel:
        assert self.model is not None
        return self.model

    @property
    def ready(self) -> bool:
        """A model is loaded."""
        return self.model is not None

    def describe(self) -> str:
        """``champion (main.ml.iris@champion)`` or ``v3 (main.ml.iris/3)``."""
        bound = f"@{self.alias}" if self.alias else f"/{self.version}"
        return f"{self.name} ({self.model_name}{bound})"


@dataclass
class Endpoint:
    """An endpoint: its entities, the weighted routes between them, its inference table.

    Attributes:
        name: The endpoint's name (``/serving-endpoints/<name>/...``).
        entities: Served entities by served name.
        capture_table: ``<catalog>.<schema>.<prefix>_payload`` when capture is enabled.
    """

    name: str
    entities: dict[str, ServedEntity]
    capture_table: str | None = None
    _targets: list[ServedEntity] = field(default_factory=list)
    _bounds: list[float] = field(default_factory=list)

    def set_routes(self, routes: Iterable[tuple[str, int]]) -> None:
        """Weighted routes ``(served name, percentage)``; zero-percent routes get no traffic."""
        total = 0.0
        self._targets, self._bounds = [], []
        for target, percentage in routes:
            if percentage <= 0:
                continue
            total += percentage
            self._targets.append(self.entities[target])
            self._bounds.append(total)
        self._bounds = [b / total for b in self._bounds] if total else []

    def choose(self, draw: float | None = None) -> ServedEntity:
        """The entity for one request, by weighted random choice."""
        if len(self._targets) == 1:
            return self._targets[0]
        point = random.random() if draw is None else draw
        index = bisect.bisect_right(self._bounds, point)
        return self._targets[min(index, len(self._targets) - 1)]


def build_endpoints(
    specs: dict[str, ModelServingEndpointSpec],
    settings: ServingSpec,
    *,
    only: str | None = None,
) -> list[Endpoint]:
    """The endpoints of a target's ``model_serving_endpoints`` (or the one named ``only``).

    Raises:
        UsageError: ``only`` names no endpoint of the target, or the target has none.
    """
    chosen = list(specs.values())
    if only is not None:
        names = [s.name for s in chosen]
        keys = list(specs)
        if only in specs:
            chosen = [specs[only]]
        elif only in names:
            chosen = [s for s in chosen if s.name == only]
        else:
            listed = ", ".join(names) or "none"
            raise UsageError(
                f"endpoint '{only}' is not in the target's model_serving_endpoints (endpoints: "
                f"{listed}; keys: {', '.join(keys) or 'none'})"
            )
    if not chosen:
        raise UsageError(
            "the target has no model_serving_endpoints; add one under resources to serve it"
        )
    return [_endpoint(spec, settings) for spec in chosen]


def _endpoint(spec: ModelServingEndpointSpec, settings: ServingSpec) -> Endpoint:
    config = spec.config
    entities: dict[str, ServedEntity] = {}
    for e in config.served_entities:
        entities[e.served_name] = ServedEntity(
            spec.name,
            e.served_name,
            e.entity_name,
            version=int(e.entity_version) if e.entity_version is not None else None,
            alias=e.entity_version_alias,
            settings=settings,
        )
    for m in config.served_models:
        entities[m.served_name] = ServedEntity(
            spec.name,
            m.served_name,
            m.model_name,
            version=int(m.model_version),
            alias=None,
            settings=settings,
        )
    capture = config.auto_capture_config
    table = None
    if capture is not None and capture.enabled:
        prefix = capture.table_name_prefix or spec.name.replace("-", "_")
        table = f"{capture.catalog_name}.{capture.schema_name}.{prefix}_payload"
    endpoint = Endpoint(spec.name, entities, table)
    routes = config.traffic_config.routes if config.traffic_config else []
    if routes:
        endpoint.set_routes((r.target, r.traffic_percentage) for r in routes)
    else:
        endpoint.set_routes([(next(iter(entities)), 100)])
    return endpoint


class ModelSwitcher:
    """Loads the entities' models and keeps alias-bound entities on their alias's version.

    Args:
        registry: The registry the models come from (its tracking URI is MLflow's current).
        endpoints: The endpoints served.
        poll_seconds: Seconds between two alias checks.
    """

    def __init__(
        self, registry: ModelRegistry, endpoints: list[Endpoint], poll_seconds: float
    ) -> None:
        self.registry = registry
        self.entities = [e for endpoint in endpoints for e in endpoint.entities.values()]
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._cache: dict[tuple[str, int], ServedModel] = {}
        self.swaps = 0

    @property
    def ready(self) -> bool:
        """Every entity has a model."""
        return all(e.ready for e in self.entities)

    def wake(self) -> None:
        """Check the aliases now (``POST /-/reload``)."""
        self._wake.set()

    async def run(self, *, loaded: bool = False) -> None:
        """Load everything (unless ``loaded``: a refresh just did), then follow the aliases
        until cancelled."""
        while True:
            if not loaded:
                await self.refresh()
            loaded = False
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def refresh(self) -> list[str]:
        """Load what is missing and what moved; returns the entities that changed model."""
        async with self._lock:  # the poller and /-/reload never load the same version twice
            return await self._refresh()

    async def _refresh(self) -> list[str]:
        first = not any(e.ready for e in self.entities)
        changed = await self._load_changed()
        if changed:
            _settle_heap(collect=first)
        return changed

    async def _load_changed(self) -> list[str]:
        changed = []
        for entity in self.entities:
            try:
                version = entity.version
                if version is None:
                    assert entity.alias is not None
                    version = await asyncio.to_thread(
                        self.registry.alias_version, entity.model_name, entity.alias
                    )
                    if version is None:
                        raise UsageError(
                            f"alias '{entity.alias}' of model {entity.model_name} is not set; "
                            f"set it (lakestack models deploy, or MLflow) to serve {entity.name}"
                        )
                if entity.model is not None and entity.model.version == version:
                    continue
                model = await self._load(entity.model_name, version)
                was = entity.model
                entity.model = model  # the swap: one reference, on the event loop
                entity.error = None
                changed.append(entity.name)
                if was is not None:
                    self.swaps += 1
                    _log.warning(
                        "%s now serves %s (was %s)", entity.describe(), model.model_id, was.model_id
                    )
            except (LakestackError, OSError) as exc:
                if entity.error != str(exc):
                    _log.error("%s cannot be loaded: %s", entity.describe(), exc)
                entity.error = str(exc)
        return changed

    async def _load(self, name: str, version: int) -> ServedModel:
        key = (name, version)
        model = self._cache.get(key)
        if model is None:
            info = await asyncio.to_thread(self.registry.get_version, name, version)
            model = await asyncio.to_thread(load_served_model, name, version, info.model_uri)
            used = {(e.model.name, e.model.version) for e in self.entities if e.model}
            self._cache = {k: v for k, v in self._cache.items() if k in used}
            self._cache[key] = model
        return model


def _settle_heap(*, collect: bool) -> None:
    """Move everything loaded so far out of the garbage collector's sight (``gc.freeze``).

    A served process holds MLflow, pandas, scikit-learn and the models: about 350,000 objects,
    which a full collection walks in about 250 ms, on the event loop, every few thousand
    requests; that pause was most of the p99 at 64 concurrent clients. Frozen objects are still
    freed by reference counting; only cycles among them stay. The first load collects first
    (nothing is served yet); a swap under traffic only freezes, which takes microseconds.
    """
    if collect:
        gc.collect()
    gc.freeze()
