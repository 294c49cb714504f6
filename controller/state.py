"""The controller's state: its settings and the `Controller` over a registry."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from controller.observe import ControllerMetrics
from controller.service import Controller
from controller.settings import ControllerSettings
from servekit.metrics import Metrics
from store import Registry, open_prefixes, open_registry


@dataclass
class ControllerState:
    settings: ControllerSettings
    controller: Controller


async def open_state(
    settings: ControllerSettings,
    stack: contextlib.AsyncExitStack,
    metrics: Metrics,
    registry: Registry | None = None,
) -> ControllerState:
    """Opens the registry from `store_url` (closed with `stack`) unless one is given."""
    if registry is None:
        registry = open_registry(settings.store_url, settings.worker_ttl)
        stack.push_async_callback(registry.close)
    prefixes = None
    if settings.policy == "cache_aware":
        prefixes = open_prefixes(
            settings.store_url, settings.prefix_ttl, settings.prefix_max_entries
        )
        stack.push_async_callback(prefixes.close)
    controller = Controller(
        registry,
        settings.policy,
        settings.allowed_worker_hosts,
        metrics=ControllerMetrics(metrics, registry),
        prefixes=prefixes,
        cache_load_margin=settings.cache_load_margin,
    )
    return ControllerState(settings, controller)
