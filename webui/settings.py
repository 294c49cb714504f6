"""Web UI settings: read once, from `CORRAL_WEBUI_*` variables and the command line."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servekit.settings import ServiceSettings, allowed_hosts_field, store_url_field

ENV_PREFIX = "CORRAL_WEBUI_"

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# Words that, in a battle's text, give away who answered: such battles are not counted.
# Every model name found in the stored votes is added to these (see webui.leaderboard).
DEFAULT_IDENTITY_WORDS = [
    "openai",
    "chatgpt",
    "gpt-3",
    "gpt-4",
    "anthropic",
    "claude",
    "google",
    "gemini",
    "bard",
    "meta ai",
    "llama",
    "vicuna",
    "lmsys",
    "mistral",
    "mixtral",
    "qwen",
    "alibaba",
    "deepseek",
    "baichuan",
    "chatglm",
    "hugging face",
    "huggingface",
    "smollm",
    "cohere",
    "microsoft",
]


class WebUISettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=7860, ge=0, le=65535, description="port to listen on")
    allowed_hosts: list[str] = allowed_hosts_field()
    api_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="the gateway's OpenAI base URL"
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key for the gateway, when it requires one"
    )
    store_url: str | None = store_url_field(
        ENV_PREFIX, "redis://host:port/db or sqlite:///path; unset: a file under CORRAL_HOME"
    )
    request_timeout: float = Field(default=300.0, gt=0, description="seconds for one answer")
    startup_timeout: float = Field(
        default=60.0, ge=0, description="seconds to wait for the gateway to list the models"
    )
    wait_for_models: list[str] = Field(
        default_factory=list,
        description="wait at start-up until the gateway lists MODEL (as well as the models "
        "with arena weights)",
        json_schema_extra={"flag": "--wait-for-model", "metavar": "MODEL"},
    )
    models_refresh_s: float = Field(default=10.0, ge=0, description="model list cache, seconds")
    concurrency_limit: int = Field(default=64, ge=1, description="events handled at once")

    # The arena
    arena_weights: dict[str, Weight] = Field(
        default_factory=dict,
        description="battle draw weight of MODEL (0 = never drawn); none given: every model 1",
        json_schema_extra={"flag": "--arena-weight", "metavar": "MODEL=WEIGHT"},
    )
    max_input_chars: int = Field(default=4000, ge=1, description="longest prompt accepted")
    max_turns: int = Field(default=10, ge=1, description="user messages per conversation")
    temperature: float = Field(default=0.7, ge=0, le=2, description="arena and chat default")
    top_p: float = Field(default=1.0, gt=0, le=1, description="arena and chat default")
    max_tokens: int = Field(
        default=512, ge=1, description="longest arena answer, in tokens; chat's default"
    )
    max_tokens_limit: int = Field(default=4096, ge=1, description="the chat slider's maximum")

    # Abuse limits: generations (send or regenerate) per window, 0 = unlimited
    session_rate_limit: int = Field(
        default=20, ge=0, description="generations per browser session per window (0: off)"
    )
    ip_rate_limit: int = Field(
        default=60, ge=0, description="generations per client IP per window (0: off)"
    )
    rate_window_s: float = Field(default=60.0, gt=0, description="the rate limits' window")
    ip_hash_salt: SecretStr | None = Field(
        default=None, description="keeps IP hashes comparable across restarts; unset: random"
    )

    # The leaderboard
    identity_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_IDENTITY_WORDS),
        description="word that reveals a model: battles naming one are not counted; any given "
        "replace the default list",
        json_schema_extra={"flag": "--identity-word", "metavar": "WORD"},
    )
    bootstrap_rounds: int = Field(
        default=1000, ge=100, description="resamples for the leaderboard's intervals"
    )
    leaderboard_seed: int = Field(default=0, description="bootstrap seed: same votes, same table")

    @model_validator(mode="after")
    def _weights_can_draw(self) -> WebUISettings:
        if self.arena_weights and not any(w > 0 for w in self.arena_weights.values()):
            raise ValueError("every arena weight is 0: no battle could ever be drawn")
        if self.max_tokens > self.max_tokens_limit:
            raise ValueError("max_tokens is above max_tokens_limit")
        return self
