"""A model's own Hugging Face `chat_template` (Jinja), rendered in a sandbox like transformers.

The environment matches transformers' `apply_chat_template`: an immutable sandbox (that also
refuses unsafe attribute access outright, where jinja2 would render it as ""), trim_blocks
and lstrip_blocks, the loopcontrols extension, `raise_exception`, `strftime_now`, a `tojson`
filter that does not HTML-escape, and `{% generation %}` blocks (rendered as their body). The
template sees `messages`, `add_generation_prompt`, `bos_token`, `eos_token` and every other
special token it is given.

A trailing assistant message is a prefix to continue: the conversation is rendered with
add_generation_prompt=False and cut right after that message's content (as transformers and
vLLM do for continue_final_message), which drops the template's end-of-turn after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .base import TemplateError, check_messages

HF_TEMPLATE_NAME = "hf-chat-template"
_RESERVED_VARIABLES = frozenset({"messages", "add_generation_prompt"})


def _raise_exception(message: str) -> NoReturn:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(date_format: str) -> str:
    return datetime.now().strftime(date_format)


class _GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks."""

    tags = {"generation"}  # noqa: RUF012 (jinja2 declares it a plain set)

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Callable[[], str]) -> str:
        return caller()


class _Sandbox(ImmutableSandboxedEnvironment):
    """Transformers' sandbox, but an unsafe attribute raises at once instead of rendering as
    an empty Undefined: `{{ x.__class__ }}` is an error, not a silent ""."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )


def _environment() -> _Sandbox:
    env = _Sandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationBlock, "jinja2.ext.loopcontrols"],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def _cut_after(rendered: str, final: str) -> str:
    """`rendered` up to the end of the final message's content (transformers' algorithm)."""
    core = final.strip()
    at = rendered.rfind(core)
    if at < 0:
        raise TemplateError(
            "the chat_template changed or dropped the final assistant message, "
            "so it cannot be continued"
        )
    kept = final.lstrip()
    if rendered[at : at + len(kept)] == kept:
        return rendered[: at + len(kept)]
    return rendered[: at + len(core)]


class ChatTemplate:
    """A Jinja chat template from a model's tokenizer config, with that tokenizer's tokens.

    `source` is the template text itself; `special_tokens` maps variable names such as
    "bos_token" and "eos_token" to the token strings (both default to "").
    """

    name = HF_TEMPLATE_NAME
    stop_strings: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        if not isinstance(source, str) or not source.strip():
            raise TemplateError("the chat_template is empty")
        tokens = dict(special_tokens or {})
        for key, value in tokens.items():
            if key in _RESERVED_VARIABLES or not key.isidentifier():
                raise TemplateError(f"special token name {key!r} is not allowed")
            if not isinstance(value, str):
                raise TemplateError(f"special token {key!r} must be a string")
        self.source = source
        self.special_tokens = MappingProxyType({"bos_token": "", "eos_token": "", **tokens})
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"the chat_template does not compile: {exc}") from exc

    def __repr__(self) -> str:
        return f"ChatTemplate(<{len(self.source)} characters>)"

    def _render(
        self, messages: list[dict[str, Any]], add_generation_prompt: bool, **extra: Any
    ) -> str:
        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                **extra,
                **self.special_tokens,
            )
        except SecurityError as exc:
            raise TemplateError(f"the chat_template tried an unsafe operation: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"the chat_template failed: {exc}") from exc
        except Exception as exc:  # a template is input: any failure of it is a bad request
            raise TemplateError(f"the chat_template failed: {type(exc).__name__}: {exc}") from exc

    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True
    ) -> str:
        turns = check_messages(messages)
        plain = [{"role": turn.role, "content": turn.content} for turn in turns]
        if turns[-1].role != "assistant":
            return self._render(plain, add_generation_prompt)
        final = turns[-1].content
        if not final.strip():  # nothing to continue: ask for a reply instead
            if len(plain) == 1:
                raise TemplateError("nothing to render: the only message is an empty assistant's")
            return self._render(plain[:-1], True)
        return _cut_after(self._render(plain, False), final)

    def render_with(
        self, messages: list[dict[str, Any]], add_generation_prompt: bool, **variables: Any
    ) -> str:
        """Render messages as given (tool calls and all) with extra variables such as `tools`;
        the caller checked them."""
        for key in variables:
            if key in _RESERVED_VARIABLES or key in self.special_tokens:
                raise TemplateError(f"template variable {key!r} is taken")
        return self._render(messages, add_generation_prompt, **variables)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "hf-chat-template",
            "source": self.source,
            "system_message": None,
            "roles": None,
            "separators": None,
            "special_tokens": dict(self.special_tokens),
            "stop_strings": [],
            "stop_token_ids": [],
        }
