"""The gateway's state: its settings, the controller client, the gatekeeper (keys and limits)
and the relay to the workers.

The gateway speaks HTTP to the controller and the workers with aiohttp, whose client costs a
fraction of httpx's per request: that difference is most of the gateway's added latency.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import aiohttp

from openai_api.auth import Gatekeeper, StreamCaps
from openai_api.observe import GatewayMetrics
from openai_api.relay import Relay
from openai_api.router import ControllerApi, ControllerClient
from openai_api.settings import GatewaySettings
from servekit.metrics import Metrics
from store import KeyStore, RateLimiter, open_keys, open_limiter


@dataclass
class GatewayState:
    settings: GatewaySettings
    controller: ControllerApi
    gatekeeper: Gatekeeper
    relay: Relay
    streams: StreamCaps


async def open_state(
    settings: GatewaySettings,
    stack: contextlib.AsyncExitStack,
    metrics: Metrics,
    *,
    keys: KeyStore | None = None,
    limiter: RateLimiter | None = None,
    controller: ControllerApi | None = None,
) -> GatewayState:
    """The gateway's state; stores and the controller client come from settings unless given,
    and what this opens is closed with `stack`."""
    if keys is None:
        keys = open_keys(settings.store_url)
        stack.push_async_callback(keys.close)
    if limiter is None:
        limiter = open_limiter(settings.store_url)
        stack.push_async_callback(limiter.close)
    if controller is None:
        controller = await _controller_client(settings, stack)
    # workers answer only holders of the control secret (see model_worker.routes)
    secret = settings.control_secret
    workers = await stack.enter_async_context(
        aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {secret}"} if secret else None,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=settings.connect_timeout,
                sock_read=settings.request_timeout,
            ),
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            auto_decompress=False,
        )
    )
    gatekeeper = Gatekeeper(
        settings.require_keys,
        settings.api_keys,
        keys,
        limiter,
        static_rpm=settings.static_key_rpm,
        static_tpm=settings.static_key_tpm,
        cache_ttl=settings.key_cache_ttl,
        failed_auth_per_minute=settings.failed_auth_per_minute,
    )
    stack.push_async_callback(gatekeeper.drain)  # charges still in flight reach the limiter
    relay = Relay(
        workers,
        controller,
        settings.max_retries,
        GatewayMetrics(metrics),
        write_idle_timeout=settings.write_idle_timeout,
        stream_idle_timeout=min(settings.stream_idle_timeout, settings.request_timeout),
    )
    streams = StreamCaps(settings.max_streams_per_key)
    return GatewayState(settings, controller, gatekeeper, relay, streams)


async def _controller_client(
    settings: GatewaySettings, stack: contextlib.AsyncExitStack
) -> ControllerClient:
    session = await stack.enter_async_context(
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=settings.controller_timeout, connect=settings.connect_timeout
            ),
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
        )
    )
    client = ControllerClient(session, settings.controller_urls, settings.control_secret)
    stack.push_async_callback(client.close)  # sends the queued releases while the session lives
    return client
