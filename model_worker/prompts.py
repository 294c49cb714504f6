"""Requests -> prompt token ids and sampling options, with the template's stops merged in.

Stop strings that are one special token (ChatML's `<|im_end|>`) never appear in decoded text,
which skips special tokens; they become stop token ids, looked up in the model's own tokenizer,
as does the special token that ends a template's assistant turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conv_templates import Template, TemplateError
from conv_templates.tools import ToolTemplate
from model_worker.backends.base import SamplingOptions
from model_worker.structured import Constraint
from protocol.errors import ContextLengthExceeded, InvalidRequest
from protocol.openai import ChatCompletionRequest, ChatMessage, CompletionRequest, SamplingFields


class PromptBuilder:
    """Renders and tokenizes prompts for one model with its one resolved template (and the way
    it renders tools, None when it cannot)."""

    def __init__(
        self,
        tokenizer: Any,
        template: Template,
        max_model_len: int,
        tools: ToolTemplate | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.tools = tools
        self.max_model_len = max_model_len
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

    def chat_ids(self, request: ChatCompletionRequest) -> list[int]:
        """The prompt; with the tool template when tools are offered or the history has tool
        calls or results (400 `unsupported` when the model's template cannot express them)."""
        messages = request.messages
        tools = request.active_tools()
        history = any(m.role == "tool" or m.tool_calls for m in messages)
        try:
            if not tools and not history:
                return self.encode(self.template.render(_plain(messages)))
            if self.tools is None:
                raise InvalidRequest(
                    f"template {self.template.name!r} cannot express tools, tool calls or "
                    "tool results; serve the model with a template that can "
                    "(`corral templates list`) or its own chat_template",
                    param="tools" if tools else "messages",
                    code="unsupported",
                )
            offered = [tool.model_dump(exclude_none=True) for tool in tools]
            return self.encode(self.tools.render(_with_calls(messages), offered))
        except TemplateError as exc:
            raise InvalidRequest(str(exc), param="messages") from exc

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=True)["input_ids"]
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


def _role(message: ChatMessage) -> str:
    return "system" if message.role == "developer" else message.role


def _plain(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    return [{"role": _role(m), "content": m.text()} for m in messages]


def _with_calls(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages with their tool calls and the ids of the calls that tool messages answer."""
    out = _plain(messages)
    for message, plain in zip(messages, out, strict=True):
        if message.tool_calls:
            plain["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if message.tool_call_id:
            plain["tool_call_id"] = message.tool_call_id
    return out


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


def chat_logprobs(request: ChatCompletionRequest) -> int | None:
    if not request.logprobs:
        return None
    return request.top_logprobs or 0
