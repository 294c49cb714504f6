"""HF transformers backend: a token-by-token decoding loop with a KV cache, off the event loop.

Each request decodes in its own loop; forward passes run one at a time in a single decode
thread, so the event loop never blocks and concurrent requests interleave their tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from model_worker.backends.base import Delta, GenerationRequest
from model_worker.backends.sampling import apply_penalties, sample, token_logprob
from model_worker.structured import GrammarCache
from model_worker.textstream import IncrementalDetokenizer, StopMatcher

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HFBackend:
    name = "hf"
    can_generate = True
    can_embed = True

    def __init__(
        self,
        model_path: Path,
        *,
        capacity: int = 4,
        dtype: str = "auto",
        max_model_len: int | None = None,
        threads: int | None = None,
    ) -> None:
        self._path = model_path
        self.capacity = capacity
        self._dtype_name = dtype
        self._max_len_override = max_model_len
        self._threads = threads
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-decode")
        self.tokenizer: Any = None
        self.chat_template: str | None = None
        self.max_model_len = 0
        self._model: Any = None
        self._eos_ids: frozenset[int] = frozenset()
        self._grammars: GrammarCache | None = None
        self._running = 0

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load)

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        if self._threads:
            torch.set_num_threads(self._threads)
        dtype = _DTYPES.get(self._dtype_name)
        if dtype is None:  # auto: full precision on CPU, half on GPU
            dtype = torch.float32 if self._device.type == "cpu" else torch.bfloat16
        self.tokenizer = AutoTokenizer.from_pretrained(self._path)
        model = AutoModelForCausalLM.from_pretrained(self._path, dtype=dtype)
        self._model = model.to(self._device).eval()  # type: ignore[arg-type]
        self.chat_template = getattr(self.tokenizer, "chat_template", None)
        config_len = getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_model_len = min(self._max_len_override or config_len, config_len)
        sources = [model.config.eos_token_id, self.tokenizer.eos_token_id]
        try:
            sources.append(GenerationConfig.from_pretrained(self._path).eos_token_id)
        except OSError:
            pass
        self._eos_ids = frozenset(_ids(sources))
        logger.info(
            "hf backend loaded %s on %s (%s, context %d)",
            self._path,
            self._device,
            dtype,
            self.max_model_len,
        )

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def healthy(self) -> bool:
        return self._model is not None

    def adapters(self) -> list[str]:
        return []

    def running(self) -> int:
        return self._running

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[list[Delta], None]:
        opts = request.options
        generator = None
        if opts.seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(opts.seed % 2**64)
        self._running += 1
        try:
            compiled = None
            if opts.constraint is not None:
                compiled = await asyncio.to_thread(self._grammar_cache().compile, opts.constraint)
            for index in range(opts.n):
                async for delta in self._generate_one(request, index, generator, compiled):
                    yield [delta]
        finally:
            self._running -= 1

    def _grammar_cache(self) -> GrammarCache:
        if self._grammars is None:
            self._grammars = GrammarCache(self.tokenizer, int(self._model.config.vocab_size))
        return self._grammars

    async def _generate_one(
        self,
        request: GenerationRequest,
        index: int,
        generator: torch.Generator | None,
        compiled: Any = None,
    ) -> AsyncIterator[Delta]:
        opts = request.options
        prompt = request.prompt_token_ids
        loop = asyncio.get_running_loop()
        stop_ids = set(opts.stop_token_ids) | (set() if opts.ignore_eos else self._eos_ids)
        detok = IncrementalDetokenizer(self.tokenizer, prompt)
        matcher = StopMatcher(opts.stop)
        limit = min(opts.max_tokens, self.max_model_len - len(prompt))
        cache = _new_cache(self._model)
        output: list[int] = []
        masker = self._grammar_cache().masker(compiled) if compiled is not None else None
        logits = await loop.run_in_executor(self._pool, self._forward, prompt, cache)
        while True:
            raw = logits
            processed = apply_penalties(raw.clone(), opts, prompt, output)
            if masker is not None:
                masker.mask(processed, sorted(stop_ids))
            if len(output) < opts.min_tokens and stop_ids and masker is None:
                processed[list(stop_ids)] = float("-inf")  # a grammar's end outranks min_tokens
            token = sample(processed, opts, generator)
            if masker is not None and token not in stop_ids:
                masker.accept(token)
            output.append(token)
            logprobs = None
            if opts.logprobs is not None:
                logprobs = [token_logprob(raw, token, opts.logprobs)]
            if token in stop_ids:
                yield Delta(index, matcher.flush(), [token], logprobs, "stop")
                return
            text = matcher.feed(detok.push(token))
            if matcher.stopped:
                yield Delta(index, text, [token], logprobs, "stop")
                return
            if len(output) >= limit:
                yield Delta(index, text + matcher.flush(), [token], logprobs, "length")
                return
            yield Delta(index, text, [token], logprobs)
            logits = await loop.run_in_executor(self._pool, self._forward, [token], cache)

    def _forward(self, ids: Sequence[int], cache: Any) -> torch.Tensor:
        with torch.inference_mode():
            input_ids = torch.tensor([list(ids)], dtype=torch.long, device=self._device)
            out = self._model(input_ids=input_ids, past_key_values=cache, use_cache=True)
            return out.logits[0, -1].float().cpu()

    async def embed(self, prompts: Sequence[list[int]]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        return [await loop.run_in_executor(self._pool, self._embed_one, p) for p in prompts]

    def _embed_one(self, ids: list[int]) -> list[float]:
        with torch.inference_mode():
            input_ids = torch.tensor([ids], dtype=torch.long, device=self._device)
            out = self._model(input_ids=input_ids, output_hidden_states=True)
            pooled = out.hidden_states[-1][0].float().mean(dim=0)
            return torch.nn.functional.normalize(pooled, dim=0).cpu().tolist()


def _ids(sources: list[Any]) -> set[int]:
    """Token ids from config fields that hold an id, a list of ids, or None."""
    found: set[int] = set()
    for source in sources:
        if isinstance(source, list):
            found.update(source)
        elif source is not None:
            found.add(source)
    return found


def _new_cache(model: Any) -> Any:
    from transformers import DynamicCache

    return DynamicCache(config=model.config)
