"""The gateway's metrics beyond request counts: tokens, latencies, retries, errors."""

from __future__ import annotations

from servekit.metrics import Metrics


class GatewayMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.ttft = metrics.histogram(
            "ttft_seconds", "request received to first token relayed", ["model"]
        )
        self.itl = metrics.histogram("inter_token_seconds", "between relayed chunks", ["model"])
        self.output_tokens = metrics.counter("output_tokens", "completion tokens", ["model"])
        self.prompt_tokens = metrics.counter("prompt_tokens", "prompt tokens", ["model"])
        self.retries = metrics.counter(
            "worker_retries", "workers skipped before the first byte, by reason", ["reason"]
        )
        self.stream_failures = metrics.counter(
            "stream_failures", "streams ended by an error event after they started", ["model"]
        )
        self.client_stalls = metrics.counter(
            "client_stalls", "streams dropped because their client stopped reading"
        )
