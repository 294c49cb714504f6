"""Web UI settings: read once, from `CORRAL_WEBUI_*` variables and the command line."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from servekit.settings import ServiceSettings, allowed_hosts_field, store_url_field

ENV_PREFIX = "CORRAL_WEBUI_"

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# Words that, in a battle's answers, give away who answered: such battles are not counted
# (see webui.identity for how they match). Families always count; a maker the user's own
# prompt named does not. Served model names are not added: list them here to ban them.
DEFAULT_IDENTITY_FAMILIES = [
    "chatgpt", "gpt", "claude", "gemini", "bard", "gemma", "llama", "tinyllama", "vicuna",
    "alpaca", "mistral", "mixtral", "qwen", "deepseek", "baichuan", "chatglm", "glm", "smollm",
    "phi", "yi", "falcon", "olmo", "internlm", "zephyr", "starling", "openchat", "wizardlm",
    "grok", "nemotron", "ernie", "stablelm", "command r",
]  # fmt: skip
DEFAULT_IDENTITY_MAKERS = [
    "openai", "anthropic", "google", "deepmind", "meta", "meta ai", "facebook", "lmsys",
    "alibaba", "hugging face", "cohere", "microsoft", "mistral ai", "allen ai", "ai2",
    "01.ai", "zhipu", "baidu", "xai", "nvidia", "stability ai", "tencent",
    "technology innovation institute",
]  # fmt: skip


DEFAULT_TERMS = (
    "Every conversation here is stored: your prompts and the answers, with a salted hash of "
    "your IP address (never the address itself), and they may be published for research. "
    "Do not enter personal or confidential information. The models may be wrong or "
    "offensive; their answers are not advice."
)


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
    model_descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="a line about MODEL shown in the arena's model list",
        json_schema_extra={"flag": "--model-description", "metavar": "MODEL=TEXT"},
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
        default=20, ge=0, description="generations per user (signed cookie) per window (0: off)"
    )
    ip_rate_limit: int = Field(
        default=60, ge=0, description="generations per client IP per window (0: off)"
    )
    rate_window_s: float = Field(default=60.0, gt=0, description="the rate limits' window")
    ip_hash_salt: SecretStr | None = Field(
        default=None,
        description="keeps IP hashes and the signed user cookie valid across restarts; "
        "unset: random",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="address or network of a proxy whose X-Forwarded-For names the client; "
        "others' are ignored",
        json_schema_extra={"flag": "--trusted-proxy", "metavar": "ADDRESS"},
    )
    user_vote_cap: int = Field(
        default=300, ge=0, description="votes per user (signed cookie) per day (0: off)"
    )
    ip_vote_cap: int = Field(
        default=1000, ge=0, description="votes per client address per day (0: off)"
    )

    terms: str = Field(
        default=DEFAULT_TERMS,
        description="terms and data notice a visitor accepts before the first message "
        "(empty: none)",
    )

    # The leaderboard
    identity_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_IDENTITY_FAMILIES),
        description="model family or name that, in an answer, reveals a model: the battle is "
        "not counted; any given replace the default list",
        json_schema_extra={"flag": "--identity-word", "metavar": "WORD"},
    )
    identity_makers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_IDENTITY_MAKERS),
        description="maker that, in an answer, reveals a model, unless the user's prompt named "
        "it; any given replace the default list",
        json_schema_extra={"flag": "--identity-maker", "metavar": "WORD"},
    )
    bootstrap_rounds: int = Field(
        default=1000, ge=100, description="resamples for the leaderboard's intervals"
    )
    leaderboard_seed: int = Field(default=0, description="bootstrap seed: same votes, same table")
    min_votes: int = Field(
        default=20, ge=1, description="battles a model needs to be ranked; below: provisional"
    )
    leaderboard_anchor: str | None = Field(
        default=None,
        description="model fixed at 1000; unset: the ranked model with the most battles",
    )
    retired_models: list[str] = Field(
        default_factory=list,
        description="model left out of battles and off the board (its votes are kept)",
        json_schema_extra={"flag": "--retire", "metavar": "MODEL"},
    )
    leaderboard_refresh_s: float = Field(
        default=60.0, ge=0, description="the web UI recomputes the board at most this often"
    )
    newcomer_boost: float = Field(
        default=3.0,
        ge=0,
        description="a model with no votes is drawn 1+BOOST times as often, fading to 1x at "
        "min_votes",
    )

    @model_validator(mode="after")
    def _weights_can_draw(self) -> WebUISettings:
        if self.arena_weights and not any(w > 0 for w in self.arena_weights.values()):
            raise ValueError("every arena weight is 0: no battle could ever be drawn")
        if self.max_tokens > self.max_tokens_limit:
            raise ValueError("max_tokens is above max_tokens_limit")
        return self
