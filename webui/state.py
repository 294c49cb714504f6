"""The web UI's state is a `WebUI` (webui.service); `open_state` builds it for the lifespan."""

from __future__ import annotations

import contextlib
import logging
import random

from store import EventLog, open_events, open_limiter
from webui.gateway import Gateway
from webui.service import WebUI
from webui.settings import WebUISettings

logger = logging.getLogger(__name__)


async def open_state(
    settings: WebUISettings,
    stack: contextlib.AsyncExitStack,
    *,
    gateway: Gateway | None = None,
    events: EventLog | None = None,
    rng: random.Random | None = None,
) -> WebUI:
    """Connect (unless given the gateway client and the event log; what this opens is closed
    with `stack`), then wait for the gateway's models and check the arena weights."""
    if settings.ip_hash_salt is None:
        logger.warning("no ip_hash_salt set: IP hashes will differ after a restart")
    if gateway is None:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        gateway = Gateway.connect(settings.api_url, key, settings.request_timeout)
        stack.push_async_callback(gateway.close)
    if events is None:
        events = open_events(settings.store_url)
        stack.push_async_callback(events.close)
    caps = open_limiter(settings.store_url)  # shared by every web UI when the store is Redis
    stack.push_async_callback(caps.close)
    ui = WebUI(settings, gateway, events, rng, caps)
    stack.push_async_callback(ui.close)
    await ui.wait_for_models()
    return ui
