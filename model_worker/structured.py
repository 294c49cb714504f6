"""Structured output: a decoding constraint that every backend enforces token by token.

A `Constraint` says what the output must be (a JSON object, JSON valid under a schema, or text
of an EBNF grammar); it travels to the backend in `SamplingOptions.constraint`, and each backend
hands it to its engine's own grammar machinery:

- hf: an xgrammar `GrammarMatcher` masks the logits before each draw (`TokenMasker`, below);
- vllm: vLLM's `StructuredOutputsParams` in `SamplingParams` (xgrammar inside vLLM);
- llamacpp: llama.cpp's GBNF grammar sampler, first in the sampler chain.

Build constraints with `json_object()`, `compile_json_schema(schema)` or `grammar(ebnf)`; a
schema or grammar that cannot be enforced is a 400 naming `param` (`response_format` for
`response_format`; tool calling passes its own). JSON is generated compact (no free
whitespace), so a model cannot spend its budget on blanks, and objects carry no properties the
schema does not name: what parses also validates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from protocol.errors import InvalidRequest
from protocol.openai import (
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    ResponseFormatText,
    check_json_schema,
)
from protocol.refused import UnsupportedParameter

if TYPE_CHECKING:
    import torch

ANY_OBJECT: dict[str, Any] = {"type": "object"}
# keywords xgrammar does not enforce (it would silently let invalid output through)
UNENFORCED = frozenset(
    {
        "contains",
        "dependentRequired",
        "dependentSchemas",
        "else",
        "if",
        "maxContains",
        "minContains",
        "not",
        "propertyNames",
        "then",
        "uniqueItems",
    }
)
_ENGINE_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: ")


# xgrammar (0.2.x) lets a string with maxLength/minLength hold raw control characters, which
# JSON forbids (json.loads and pydantic refuse them); its plain strings already exclude them.
_LOOSE_CHARS = '[^\\"\\\\\\r\\n]'
_JSON_CHARS = '[^\\0-\\x1f\\"\\\\]'


@dataclass(frozen=True)
class Constraint:
    """What the output must be.

    `spec` is JSON-schema text (json) or an EBNF grammar (grammar); `ebnf` is the grammar that
    xgrammar-based engines (hf, vllm) enforce: for json, xgrammar's own conversion of the
    schema, with strings that hold no raw control characters.
    """

    kind: Literal["json", "grammar"]
    spec: str
    ebnf: str

    def schema(self) -> dict[str, Any]:
        if self.kind != "json":
            raise ValueError("not a JSON-schema constraint")
        loaded: dict[str, Any] = json.loads(self.spec)
        return loaded


def json_object() -> Constraint:
    """Any JSON object (OpenAI's `json_object` response format)."""
    return compile_json_schema(ANY_OBJECT)


def compile_json_schema(schema: Mapping[str, Any], *, param: str = "response_format") -> Constraint:
    """JSON valid under `schema`; 400 with `param` when the schema is invalid or unenforceable."""
    check_json_schema(dict(schema), param=param)
    unenforced = sorted(set(_keywords(schema)) & UNENFORCED)
    if unenforced:
        raise UnsupportedParameter(
            f"JSON schema keywords that cannot be enforced while decoding: {unenforced}",
            param=param,
        )
    spec = json.dumps(schema, sort_keys=True)
    import xgrammar

    try:
        converted = xgrammar.Grammar.from_json_schema(spec, any_whitespace=False, strict_mode=True)
    except Exception as exc:  # xgrammar raises several kinds for what it cannot convert
        raise InvalidRequest(
            f"this JSON schema cannot be enforced: {_engine_message(exc)}", param=param
        ) from None
    return Constraint("json", spec, str(converted).replace(_LOOSE_CHARS, _JSON_CHARS))


def grammar(ebnf: str, *, param: str) -> Constraint:
    """Text of an EBNF grammar (GBNF syntax, root rule `root`), as xgrammar and llama.cpp read."""
    import xgrammar

    try:
        xgrammar.Grammar.from_ebnf(ebnf)
    except Exception as exc:  # xgrammar's parser raises several kinds
        raise InvalidRequest(f"invalid grammar: {_engine_message(exc)}", param=param) from None
    return Constraint("grammar", ebnf, ebnf)


def _keywords(schema: Any) -> Iterator[str]:
    """The keywords used anywhere in a schema (property names and literal data skipped)."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key in ("properties", "$defs", "definitions", "patternProperties"):
                if isinstance(value, Mapping):
                    for sub in value.values():
                        yield from _keywords(sub)
                continue
            if key in ("enum", "const", "default", "examples", "required"):
                continue  # data, not schemas
            if key == "uniqueItems" and value is False:
                continue
            yield key
            yield from _keywords(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _keywords(item)


def _engine_message(exc: Exception) -> str:
    """xgrammar's message without its timestamp and C++ source location."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return _ENGINE_PREFIX.sub("", lines[-1] if lines else type(exc).__name__)


ResponseFormatField = ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema


def from_response_format(fmt: ResponseFormatField | None) -> Constraint | None:
    """The constraint a chat request's `response_format` asks for (None: free text)."""
    if isinstance(fmt, ResponseFormatJSONObject):
        return json_object()
    if isinstance(fmt, ResponseFormatJSONSchema):
        return compile_json_schema(fmt.json_schema.schema_ or {})
    return None


# ---------------------------------------------------------------- hf: xgrammar masks


class GrammarCache:
    """Compiles constraints for one tokenizer (hf backend); compiled grammars are cached."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        import xgrammar

        self._info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgrammar.GrammarCompiler(self._info, max_threads=1)
        self.vocab_size = vocab_size
        self.end_ids = tuple(self._info.stop_token_ids)

    def compile(self, constraint: Constraint) -> Any:
        """Blocking (milliseconds to a second for a large vocabulary): call it off the loop."""
        return self._compiler.compile_grammar(constraint.ebnf)

    def masker(self, compiled: Any) -> TokenMasker:
        return TokenMasker(compiled, self.vocab_size, self.end_ids)


class TokenMasker:
    """One choice's grammar state: masks logits to the tokens the grammar allows next.

    The grammar knows the tokenizer's end-of-sequence ids; a request also stops on its own ids
    (the template's end of turn). Those are allowed exactly where the grammar may end.
    """

    def __init__(self, compiled: Any, vocab_size: int, end_ids: Sequence[int]) -> None:
        import xgrammar

        self._matcher = xgrammar.GrammarMatcher(compiled)
        self._bitmask = xgrammar.allocate_token_bitmask(1, vocab_size)
        self._end_ids = list(end_ids)

    def mask(self, logits: torch.Tensor, stop_ids: Sequence[int]) -> None:
        """In place on one position's logits (1-D, on the CPU)."""
        import torch
        import xgrammar

        stops = list(stop_ids)
        kept = logits[stops].clone() if stops else None
        self._matcher.fill_next_token_bitmask(self._bitmask)
        xgrammar.apply_token_bitmask_inplace(logits.unsqueeze(0), self._bitmask)
        may_end = bool(self._end_ids) and bool(torch.isfinite(logits[self._end_ids]).any())
        if stops:
            logits[stops] = kept if may_end else float("-inf")  # type: ignore[assignment]

    def accept(self, token_id: int) -> None:
        if not self._matcher.accept_token(token_id):
            raise RuntimeError(f"token {token_id} broke the grammar")

    def finished(self) -> bool:
        """The grammar admits nothing more: only an end token may follow."""
        return bool(self._matcher.is_terminated())
