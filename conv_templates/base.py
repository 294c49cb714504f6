"""The template vocabulary: the error, the `Template` protocol, message checks, the row type.

A registry template is one frozen `ConversationTemplate` row. Every family is rendered by the
same loop over the messages, driven by the row's fields (system format, role prefixes, turn
terminators); no family needs code of its own, so there is no chain of if/elif over styles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, cast, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")

SYSTEM_PLACEHOLDER = "{system}"


class TemplateError(ValueError):
    """Bad messages, an unknown template name, or a template that cannot render (HTTP 400)."""


@runtime_checkable
class Template(Protocol):
    """What every template offers: registry rows and `ChatTemplate` alike."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def stop_strings(self) -> tuple[str, ...]: ...

    @property
    def stop_token_ids(self) -> tuple[int, ...]: ...

    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True
    ) -> str: ...

    def describe(self) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


def check_messages(
    messages: Sequence[Mapping[str, Any]], *, tool_role: bool = False
) -> tuple[Message, ...]:
    """Validate OpenAI-style messages; raise `TemplateError` saying what is wrong and where.

    `tool_role` also admits "tool" messages (tool results, see `tools.py`)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TemplateError(
            "messages must be a list of {'role': ..., 'content': ...} objects, "
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise TemplateError("messages must not be empty")
    checked: list[Message] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TemplateError(
                f"messages[{i}] must be an object with 'role' and 'content', "
                f"got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES and not (tool_role and role == "tool"):
            raise TemplateError(
                f"messages[{i}].role must be 'system', 'user' or 'assistant', got {role!r}"
            )
        content = message.get("content")
        if not isinstance(content, str):
            raise TemplateError(
                f"messages[{i}].content must be a string, got {type(content).__name__}"
            )
        if role == "system" and i != 0:
            raise TemplateError(f"messages[{i}]: a system message is only allowed first")
        checked.append(Message(cast(Role, role), content))
    return tuple(checked)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConversationTemplate:
    """One family's prompt format, as data.

    Rendering, for messages [system?, m1, m2, ...]:

    - system: the request's system message, else `system_message` (the default). When it is not
      empty, `system_format` with `{system}` replaced by it is written first, or, when
      `system_in_first_user` is set, inside the first user turn before its content (Llama-2).
    - user turn: `user_prefix + content + user_suffix`.
    - assistant turn: `assistant_prefix + content + assistant_suffix`; a trailing assistant
      message is a prefix for the model to continue: no `assistant_suffix`, no generation prompt
      (an empty one leaves nothing to continue and renders as the generation prompt).
    - generation prompt (when asked for and the last message is a user's): `generation_prompt`,
      which defaults to `assistant_prefix`.
    - `strip_content`: strip surrounding whitespace off every content, as the family's own code
      does (Meta's Llama-2/3 reference, allenai open-instruct); a system block that joins the
      first user turn is stripped together with it, as Meta's Llama-2 code does.

    `roles` only names the two speakers for people (`describe()`); the prefixes do the work.
    `stop_token_ids` are ids in the family's own vocabulary, on top of the tokenizer's EOS.
    """

    name: str
    source: str
    roles: tuple[str, str]
    system_message: str = ""
    system_format: str = SYSTEM_PLACEHOLDER
    system_in_first_user: bool = False
    user_prefix: str = ""
    user_suffix: str = ""
    assistant_prefix: str = ""
    assistant_suffix: str = ""
    generation_prompt: str | None = None
    strip_content: bool = False
    stop_strings: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    # Tool calling (see tools.py): the family's tool format ("" = it has none) and the turn
    # that carries tool results back to the model.
    tool_format: str = ""
    tool_prefix: str = ""
    tool_suffix: str = ""

    def __post_init__(self) -> None:
        where = f"template {self.name!r}"
        if not self.name or self.name != self.name.strip() or " " in self.name:
            raise ValueError(f"{where}: a name must be non-empty and without spaces")
        if not self.source.strip() or "\n" in self.source:
            raise ValueError(f"{where}: source must be one non-empty line")
        if SYSTEM_PLACEHOLDER not in self.system_format:
            raise ValueError(f"{where}: system_format must contain {SYSTEM_PLACEHOLDER}")
        if len(self.roles) != 2 or not all(isinstance(r, str) for r in self.roles):
            raise ValueError(f"{where}: roles must be two strings (user, assistant)")
        if not all(isinstance(s, str) and s for s in self.stop_strings):
            raise ValueError(f"{where}: stop_strings must be non-empty strings")
        if not all(type(i) is int and i >= 0 for i in self.stop_token_ids):
            raise ValueError(f"{where}: stop_token_ids must be non-negative ints")
        if bool(self.tool_format) != bool(self.tool_prefix):
            raise ValueError(f"{where}: a tool_format needs a tool_prefix and the other way")

    @property
    def generation_prefix(self) -> str:
        """What the generation prompt writes: `generation_prompt`, else `assistant_prefix`."""
        return self.assistant_prefix if self.generation_prompt is None else self.generation_prompt

    def _clean(self, text: str) -> str:
        return text.strip() if self.strip_content else text

    def _prefix(self, text: str) -> str:
        """A trailing assistant message, cut like transformers' continue_final_message: its
        trailing whitespace survives `strip_content` only where the full turn has it too."""
        cleaned = self._clean(text)
        tail = text[len(text.rstrip()) :]
        if self.strip_content and tail and self.assistant_suffix.startswith(tail):
            return cleaned + tail
        return cleaned

    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True
    ) -> str:
        return self.render_turns(check_messages(messages), add_generation_prompt)

    def render_turns(self, turns: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """Render checked messages; "tool" turns (tool results) need the row's tool turn."""
        if any(turn.role == "tool" for turn in turns) and not self.tool_format:
            raise TemplateError(f"template {self.name!r} cannot express tool results")
        turns = tuple(turns)
        system = self.system_message
        if turns[0].role == "system":
            system, turns = turns[0].content, turns[1:]
        if not self.system_in_first_user:  # else it is stripped with the turn it joins
            system = self._clean(system)
        block = self.system_format.replace(SYSTEM_PLACEHOLDER, system) if system else ""
        if self.system_in_first_user:
            if block and (not turns or turns[0].role != "user"):
                turns = (Message("user", ""), *turns)
            parts = []
        else:
            parts = [block]
        last = len(turns) - 1
        for i, turn in enumerate(turns):
            text = turn.content
            if i == 0 and self.system_in_first_user and turn.role == "user":
                text = block + text
            continuing = i == last and turn.role == "assistant"
            content = self._prefix(text) if continuing else self._clean(text)
            if turn.role == "user":
                parts += (self.user_prefix, content, self.user_suffix)
            elif turn.role == "tool":
                parts += (self.tool_prefix, content, self.tool_suffix)
            elif continuing:
                # A prefix to continue; an empty one leaves nothing to continue: prompt instead.
                parts += (self.assistant_prefix, content) if content else (self.generation_prefix,)
            else:
                parts += (self.assistant_prefix, content, self.assistant_suffix)
        if add_generation_prompt and (not turns or turns[-1].role in ("user", "tool")):
            parts.append(self.generation_prefix)
        return "".join(parts)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "registry",
            "source": self.source,
            "system_message": self.system_message,
            "roles": {"user": self.roles[0], "assistant": self.roles[1]},
            "separators": {
                "system_format": self.system_format,
                "system_in_first_user": self.system_in_first_user,
                "user_prefix": self.user_prefix,
                "user_suffix": self.user_suffix,
                "assistant_prefix": self.assistant_prefix,
                "assistant_suffix": self.assistant_suffix,
                "generation_prompt": self.generation_prefix,
            },
            "strip_content": self.strip_content,
            "stop_strings": list(self.stop_strings),
            "stop_token_ids": list(self.stop_token_ids),
        }
