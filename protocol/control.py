"""Control-plane schemas: what workers tell the controller and what the gateway asks it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# An OpenAI endpoint a worker serves (its capabilities) and a request asks for.
Endpoint = Literal["chat", "completions", "embeddings"]
DEFAULT_CAPABILITIES: tuple[Endpoint, ...] = ("chat", "completions")


class ControlModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkerRegistration(ControlModel):
    worker_id: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=512, description="base URL the gateway calls")
    models: list[str] = Field(min_length=1, max_length=256)
    capacity: int = Field(ge=1, le=100_000, description="requests served at once")
    capabilities: list[Endpoint] = Field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    backend: str = "unknown"
    template: str | None = None
    context_length: int | None = Field(default=None, ge=1)


class Heartbeat(ControlModel):
    worker_id: str = Field(min_length=1, max_length=128)
    in_flight: int = Field(ge=0, description="requests running or queued on the worker now")
    queued: int = Field(default=0, ge=0)
    healthy: bool = True


class HeartbeatReply(ControlModel):
    known: bool = Field(description="false when the controller has no record: register again")


class Deregistration(ControlModel):
    worker_id: str = Field(min_length=1, max_length=128)


# The most request ends one dispatch or release carries (a gateway sends more in batches).
MAX_RELEASES = 10_000
# The most prefix keys one dispatch carries: the leading messages' prefixes, longest last.
MAX_PREFIX_KEYS = 32


class DispatchRequest(ControlModel):
    model: str = Field(min_length=1)
    endpoint: Endpoint = "chat"
    exclude: list[str] = Field(default_factory=list, max_length=64)
    release: list[str] = Field(
        default_factory=list,
        max_length=MAX_RELEASES,
        description="workers whose requests ended since the gateway's last call",
    )
    prefix_keys: list[str] = Field(
        default_factory=list,
        max_length=MAX_PREFIX_KEYS,
        description="hashes of the request's leading prefixes, shortest first (cache_aware)",
    )


class DispatchReply(ControlModel):
    worker_id: str
    url: str


class Release(ControlModel):
    worker_ids: list[str] = Field(min_length=1, max_length=MAX_RELEASES)


class WorkerStatus(ControlModel):
    registration: WorkerRegistration
    in_flight: int
    queued: int
    healthy: bool
    last_heartbeat_age_s: float
    dispatched_total: int


class ModelStatus(ControlModel):
    id: str
    workers: int
    capacity: int
    in_flight: int
    context_length: int | None = Field(
        default=None, description="the smallest its live workers told; None: none told"
    )


class ModelsReply(ControlModel):
    models: list[ModelStatus]
