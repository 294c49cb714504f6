"""Web UI settings: read once, from `CORRAL_WEBUI_*` variables and the command line."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class WebUISettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CORRAL_WEBUI_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    api_url: str = Field(default="http://127.0.0.1:8000/v1", description="the gateway's /v1")
    api_key: SecretStr | None = Field(default=None, description="key for the gateway, if it asks")
    store_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("store_url", "CORRAL_WEBUI_STORE_URL", "CORRAL_STORE_URL"),
        description="redis://host:port/db or sqlite:///path (default: a file under CORRAL_HOME)",
    )
    request_timeout: float = Field(default=300.0, gt=0, description="seconds for one answer")
    startup_timeout: float = Field(
        default=60.0, ge=0, description="seconds to wait for the gateway to list the models"
    )
    wait_for_models: list[str] = Field(
        default_factory=list,
        description="models the start-up waits to see listed (as well as those with arena weights)",
    )
    models_refresh_s: float = Field(default=10.0, ge=0, description="model list cache")
    concurrency_limit: int = Field(default=64, ge=1, description="events handled at once")

    # The arena
    arena_weights: dict[str, Weight] = Field(
        default_factory=dict, description="model -> draw weight; empty: every model weighs 1"
    )
    max_input_chars: int = Field(default=4000, ge=1)
    max_turns: int = Field(default=10, ge=1, description="user messages per conversation")
    temperature: float = Field(default=0.7, ge=0, le=2, description="arena and chat default")
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=512, ge=1, description="arena answers; chat's default")
    max_tokens_limit: int = Field(default=4096, ge=1, description="the chat slider's maximum")

    # Abuse limits: generations (send or regenerate) per window, 0 = unlimited
    session_rate_limit: int = Field(default=20, ge=0, description="per browser session")
    ip_rate_limit: int = Field(default=60, ge=0, description="per client IP")
    rate_window_s: float = Field(default=60.0, gt=0)
    ip_hash_salt: SecretStr | None = Field(
        default=None, description="keeps IP hashes comparable across restarts; default: random"
    )

    # The leaderboard
    identity_words: list[str] = Field(default_factory=lambda: list(DEFAULT_IDENTITY_WORDS))
    bootstrap_rounds: int = Field(default=1000, ge=100)
    leaderboard_seed: int = Field(default=0, description="bootstrap seed: same votes, same table")

    @model_validator(mode="after")
    def _weights_can_draw(self) -> WebUISettings:
        if self.arena_weights and not any(w > 0 for w in self.arena_weights.values()):
            raise ValueError("every arena weight is 0: no battle could ever be drawn")
        if self.max_tokens > self.max_tokens_limit:
            raise ValueError("max_tokens is above max_tokens_limit")
        return self
