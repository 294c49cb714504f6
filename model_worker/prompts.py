"""Requests -> prompt token ids and sampling options, with the template's stops merged in.

Stop strings that are one special token (ChatML's `<|im_end|>`) never appear in decoded text,
which skips special tokens; they become stop token ids, looked up in the model's own tokenizer,
as does the special token that ends a template's assistant turn.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from conv_templates import Template, TemplateError
from model_worker.backends.base import SamplingOptions
from model_worker.structured import Constraint
from protocol.errors import ContextLengthExceeded, InvalidRequest
from protocol.openai import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    EmbeddingRequest,
    SamplingFields,
)

T = TypeVar("T")

# Stand-ins for message contents while a template renders (private-use characters).
_MARK = re.compile("\ue000(\\d+)\ue001")


class PromptBuilder:
    """Renders and tokenizes prompts for one model with its one resolved template.

    Rendering and tokenizing a large request takes a while, so it never runs on the event loop
    (which must keep heartbeating): `run` hands it to a thread of this builder's own. One
    thread, so that a tokenizer is never used by two requests at once, and queued work is
    bounded by the admission slots its callers hold.

    Message contents are text, never control tokens: a user who types `<|im_end|>` gets the
    characters, not the token that ends a turn (role spoofing). Such a conversation is
    rendered with stand-ins for its contents, and each content is tokenized on its own with
    every special token's spelling split in two.
    """

    def __init__(self, tokenizer: Any, template: Template, max_model_len: int) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.max_model_len = max_model_len
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="prompts")
        self._specials = special_texts(tokenizer)
        self._special_re = (
            re.compile(
                "|".join(re.escape(t) for t in sorted(self._specials, key=len, reverse=True))
            )
            if self._specials
            else None
        )
        vocab = len(tokenizer)
        listed = [i for i in template.stop_token_ids if 0 <= i < vocab]
        turn_end = getattr(template, "assistant_suffix", "")  # registry rows only
        self._stop_ids = tuple(
            dict.fromkeys(
                [
                    *listed,
                    *special_token_ids(tokenizer, template.stop_strings),
                    *first_dropped_token(tokenizer, turn_end),
                ]
            )
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the builder's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        plain = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in messages
        ]
        found = self._special_re
        if found is not None and any(found.search(m["content"]) for m in plain):
            return self._chat_ids_escaped(plain)
        return self.encode(self._render(plain))

    def _render(self, messages: list[dict[str, str]]) -> str:
        try:
            return self.template.render(messages, add_generation_prompt=True)
        except TemplateError as exc:
            raise InvalidRequest(str(exc), param="messages") from exc

    def _chat_ids_escaped(self, plain: list[dict[str, str]]) -> list[int]:
        marked = [{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(plain)]
        pieces = _MARK.split(self._render(marked))
        if sorted(int(i) for i in pieces[1::2]) != list(range(len(plain))):
            raise InvalidRequest(  # the template changed or dropped a content
                "message content must not contain the model's special tokens",
                param="messages",
            )
        ids: list[int] = list(self.tokenizer("", add_special_tokens=True)["input_ids"])
        for j, piece in enumerate(pieces):
            if j % 2:
                ids += self._text_ids(plain[int(piece)]["content"])
            elif piece:
                ids += self.tokenizer(piece, add_special_tokens=False)["input_ids"]
        return self._one_bos(ids)

    def _text_ids(self, text: str) -> list[int]:
        """`text` as plain characters: a special token's spelling becomes ordinary tokens."""
        assert self._special_re is not None
        ids: list[int] = []
        start = 0
        for match in self._special_re.finditer(text):
            for part in (text[start : match.start()], match[0][:1], match[0][1:]):
                if part:
                    ids += self.tokenizer(part, add_special_tokens=False)["input_ids"]
            start = match.end()
        if text[start:]:
            ids += self.tokenizer(text[start:], add_special_tokens=False)["input_ids"]
        return ids

    def encode(self, text: str) -> list[int]:
        return self._one_bos(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _one_bos(self, ids: list[int]) -> list[int]:
        bos = self.tokenizer.bos_token_id
        if bos is not None and len(ids) >= 2 and ids[0] == ids[1] == bos:
            ids = ids[1:]  # the template already wrote BOS and the tokenizer added one more
        return ids

    def completion_ids(self, request: CompletionRequest) -> list[list[int]]:
        prompts = request.prompts()
        vocab = len(self.tokenizer)
        result: list[list[int]] = []
        for prompt in prompts:
            if isinstance(prompt, str):
                result.append(self.encode(prompt))
            else:
                if any(not 0 <= t < vocab for t in prompt):
                    raise InvalidRequest(f"token ids must be in [0, {vocab})", param="prompt")
                result.append(list(prompt))
        return result

    def embedding_ids(self, request: EmbeddingRequest) -> list[list[int]]:
        vocab = len(self.tokenizer)
        prompts: list[list[int]] = []
        for item in request.inputs():
            if isinstance(item, str):
                ids = self.tokenizer(item, add_special_tokens=True)["input_ids"]
            else:
                if any(not 0 <= t < vocab for t in item):
                    raise InvalidRequest(f"token ids must be in [0, {vocab})", param="input")
                ids = list(item)
            if not ids:
                raise InvalidRequest("input is empty after tokenization", param="input")
            if len(ids) > self.max_model_len:
                raise ContextLengthExceeded(
                    f"This model's maximum context length is {self.max_model_len} "
                    f"tokens, however you requested {len(ids)} tokens in the input.",
                    param="input",
                )
            prompts.append(ids)
        return prompts

    def max_tokens(self, prompt_len: int, requested: int | None, param: str) -> int:
        """The completion budget; the OpenAI context-length error when it cannot fit."""
        if prompt_len == 0:
            raise InvalidRequest(f"the {param} is empty: there is nothing to complete", param=param)
        room = self.max_model_len - prompt_len
        if room <= 0 or (requested is not None and requested > room):
            asked = prompt_len + (requested or 0)
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.max_model_len} tokens. "
                f"However, you requested {asked} tokens ({prompt_len} in the {param}, "
                f"{requested or 0} in the completion). Please reduce the length of the "
                f"{param} or completion.",
                param=param,
            )
        return requested if requested is not None else room

    def options(
        self,
        request: SamplingFields,
        max_tokens: int,
        logprobs: int | None,
        *,
        chat: bool,
        constraint: Constraint | None = None,
    ) -> SamplingOptions:
        """Sampling options; a chat request also stops where its template's turn ends."""
        stops = [*request.stop_list(), *(self.template.stop_strings if chat else ())]
        stop_ids = [
            *request.stop_token_ids,
            *special_token_ids(self.tokenizer, request.stop_list()),
            *(self._stop_ids if chat else ()),
        ]
        vocab = len(self.tokenizer)
        biases = request.logit_biases()
        if any(not 0 <= token < vocab for token, _ in biases):
            raise InvalidRequest(
                f"logit_bias token ids must be in [0, {vocab})", param="logit_bias"
            )
        return SamplingOptions(
            max_tokens=max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            min_p=request.min_p,
            seed=request.seed,
            n=request.n,
            stop=tuple(dict.fromkeys(stops)),
            stop_token_ids=tuple(dict.fromkeys(stop_ids)),
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            repetition_penalty=request.repetition_penalty,
            logit_bias=biases,
            ignore_eos=request.ignore_eos,
            min_tokens=request.min_tokens,
            logprobs=logprobs,
            constraint=constraint,
        )


def _dropped(tokenizer: Any, token_id: int, text: str) -> bool:
    """Whether `token_id` is the special token spelt `text`, which detokenizing drops (an
    unknown-token id spells something else)."""
    kept = tokenizer.decode([token_id], skip_special_tokens=False)
    return kept == text and tokenizer.decode([token_id], skip_special_tokens=True) == ""


def special_token_ids(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Ids of the stop strings that are one special token (ChatML's `<|im_end|>`, Llama-3's
    `<|eot_id|>`): streamed text skips special tokens, so only their id can stop generation."""
    found: list[int] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        if len(ids) == 1 and _dropped(tokenizer, ids[0], text):
            found.append(ids[0])
    return found


def first_dropped_token(tokenizer: Any, turn_end: str) -> list[int]:
    """The special token that ends a template's assistant turn, if its turn end has one."""
    if not turn_end:
        return []
    for token_id in tokenizer(turn_end, add_special_tokens=False)["input_ids"]:
        spelt = tokenizer.decode([token_id], skip_special_tokens=False)
        if spelt.strip() and spelt in turn_end and _dropped(tokenizer, token_id, spelt):
            return [token_id]
    return []


def special_texts(tokenizer: Any) -> tuple[str, ...]:
    """The spellings of a tokenizer's special (control) tokens, as far as it tells them."""
    texts = set(getattr(tokenizer, "all_special_tokens", None) or ())
    for added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(added, "special", False):
            texts.add(str(added.content))
    more = getattr(tokenizer, "special_texts", None)
    if callable(more):
        texts.update(more())
    return tuple(sorted(t for t in texts if t))


def chat_logprobs(request: ChatCompletionRequest) -> int | None:
    if not request.logprobs:
        return None
    return request.top_logprobs or 0
