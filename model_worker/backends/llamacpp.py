"""llama.cpp backend: a GGUF served as it is (quantized, memory-mapped) with llama-cpp-python.

One model, mapped once; `parallel` contexts, each with a KV cache of its own, decode at once
over it. A request holds one context for all its choices and decodes in a thread of the
backend's pool (every llama.cpp call is a ctypes call, which releases the GIL), so the event
loop only relays finished deltas. A context keeps the KV cache of what it decoded last: the next
turn of a conversation, and each further choice of `n`, decodes only the tokens that differ.

The engine is llama-cpp-python's thin wrappers over llama.h (`llama_cpp._internals`), not its
`Llama` class, which owns one context per model; detokenization, stop strings and the OpenAI
framing are the worker's own, shared with the other backends. Sampling: `llamacpp_sampling.py`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_worker.backends.base import BackendError, Delta, GenerationRequest
from model_worker.backends.llamacpp_sampling import adjust_logits, sampler_chain, token_logprob
from model_worker.backends.llamacpp_tokenizer import LlamaCppTokenizer
from model_worker.textstream import IncrementalDetokenizer, StopMatcher

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 4096  # per context, unless --max-model-len says otherwise
EMBED_CHUNK = 64  # tokens per decode when embedding (every token is an output there)
_Emit = Callable[[Any], None]


@dataclass
class _Slot:
    """One llama.cpp context and the tokens its KV cache holds (sequence 0)."""

    ctx: Any
    batch: Any
    step: int  # tokens one decode call takes (the batch's size)
    cached: list[int] = field(default_factory=list)


class LlamaCppBackend:
    name = "llamacpp"
    can_generate = True

    def __init__(
        self,
        gguf: Path,
        *,
        parallel: int = 1,
        max_model_len: int | None = None,
        threads: int | None = None,
        batch_size: int = 512,
    ) -> None:
        self._path = gguf
        self.capacity = parallel
        self._max_len_override = max_model_len
        self._threads = threads
        self._batch_size = batch_size
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llamacpp")
        self._free: asyncio.Queue[_Slot] = asyncio.Queue()
        self._slots: list[_Slot] = []
        self._stops: set[threading.Event] = set()
        self._model: Any = None
        self._eog: frozenset[int] = frozenset()
        self._n_vocab = 0
        self._running = 0
        self.tokenizer: Any = None
        self.chat_template: str | None = None
        self.max_model_len = 0
        self.can_embed = False

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._load)
        for slot in self._slots:
            self._free.put_nowait(slot)

    def _load(self) -> None:
        import os

        from llama_cpp import _internals
        from llama_cpp import llama_cpp as C

        # llama.cpp logs through llama-cpp-python's logger (every tensor it loads); its
        # verbose=False would instead point the process's stdout/stderr at /dev/null meanwhile
        if not logger.isEnabledFor(logging.DEBUG):
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        C.llama_backend_init()
        params = _internals.LlamaModel.default_params()
        params.use_mmap = True
        model = _internals.LlamaModel(path_model=str(self._path), params=params, verbose=True)
        train_len = model.n_ctx_train() or DEFAULT_CONTEXT
        n_ctx = min(self._max_len_override or DEFAULT_CONTEXT, train_len)
        threads = self._threads or os.cpu_count() or 1
        for _ in range(self.capacity):
            cp = _internals.LlamaContext.default_params()
            cp.n_ctx = n_ctx
            cp.n_batch = cp.n_ubatch = min(n_ctx, self._batch_size)
            cp.n_seq_max = 1
            cp.n_threads = cp.n_threads_batch = threads
            cp.embeddings = False
            ctx = _internals.LlamaContext(model=model, params=cp, verbose=True)
            batch = _internals.LlamaBatch(n_tokens=cp.n_batch, embd=0, n_seq_max=1, verbose=True)
            self._slots.append(_Slot(ctx, batch, cp.n_batch))
        self._model = model
        self._n_vocab = model.n_vocab()
        self.tokenizer = LlamaCppTokenizer(model.vocab)
        self._eog = frozenset(
            i for i in range(self._n_vocab) if C.llama_vocab_is_eog(model.vocab, i)
        )
        self.chat_template = model.metadata().get("tokenizer.chat_template") or None
        self.max_model_len = n_ctx
        self.can_embed = not C.llama_model_has_encoder(model.model)
        logger.info(
            "llamacpp backend loaded %s (%s, %d contexts of %d tokens, %d threads)",
            self._path,
            model.desc(),
            self.capacity,
            n_ctx,
            threads,
        )

    async def close(self) -> None:
        for stop in list(self._stops):
            stop.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        for slot in self._slots:
            slot.batch.close()
            slot.ctx.close()
        self._slots.clear()
        if self._model is not None:
            self._model.close()
            self._model = None

    def healthy(self) -> bool:
        return self._model is not None

    def adapters(self) -> list[str]:
        return []

    def running(self) -> int:
        return self._running

    # Generation

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[list[Delta], None]:
        slot = await self._free.get()
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        self._stops.add(stop)

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(out.put_nowait, item)

        job = loop.run_in_executor(self._pool, self._run, slot, request, emit, stop)
        job.add_done_callback(lambda _: self._release(slot, stop))  # only once it stopped
        self._running += 1
        try:
            while True:
                items = [await out.get()]
                while not out.empty():
                    items.append(out.get_nowait())
                deltas = [i for i in items if isinstance(i, Delta)]
                if deltas:
                    yield deltas
                for item in items:
                    if isinstance(item, BaseException):
                        raise item
                if None in items:
                    return
        finally:
            stop.set()  # a client that left aborts the request at its next token
            self._running -= 1

    def _release(self, slot: _Slot, stop: threading.Event | None = None) -> None:
        if stop is not None:
            self._stops.discard(stop)
        self._free.put_nowait(slot)

    def _run(
        self, slot: _Slot, request: GenerationRequest, emit: _Emit, stop: threading.Event
    ) -> None:
        """The request's decoding loop, in a pool thread: every choice, one after another."""
        try:
            for index in range(request.options.n):
                for delta in self._choice(slot, request, index, stop):
                    emit(delta)
                if stop.is_set():
                    return
        except BackendError as exc:
            emit(exc)
        except Exception as exc:  # the thread must always end the stream
            emit(BackendError(f"llama.cpp failed: {exc}"))
        finally:
            emit(None)

    def _choice(
        self, slot: _Slot, request: GenerationRequest, index: int, stop: threading.Event
    ) -> Iterator[Delta]:
        opts = request.options
        prompt = request.prompt_token_ids
        stop_ids = set(opts.stop_token_ids) | (set() if opts.ignore_eos else self._eog)
        detok = IncrementalDetokenizer(self.tokenizer, prompt)
        matcher = StopMatcher(opts.stop)
        limit = min(opts.max_tokens, self.max_model_len - len(prompt))
        chain = sampler_chain(opts, index, self._model)
        output: list[int] = []
        try:
            self._prefill(slot, prompt)
            while not stop.is_set():
                logits = self._logits(slot)
                raw = logits.copy() if opts.logprobs is not None else logits
                early = len(output) < opts.min_tokens and opts.constraint is None
                banned = stop_ids if early else ()  # a grammar's end outranks min_tokens
                adjust_logits(logits, opts, prompt, output, banned)
                token = int(chain.sample(slot.ctx, -1))
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
                self._decode(slot, [token])
        finally:
            chain.close()

    def _prefill(self, slot: _Slot, prompt: Sequence[int]) -> None:
        """Decode what the context does not hold yet (at least the prompt's last token)."""
        keep = 0
        for cached, wanted in zip(slot.cached, prompt, strict=False):
            if cached != wanted:
                break
            keep += 1
        keep = min(keep, len(prompt) - 1)
        if keep < len(slot.cached):
            if not slot.ctx.kv_cache_seq_rm(0, keep, -1):
                slot.ctx.kv_cache_clear()
                keep = 0
            del slot.cached[keep:]
        self._decode(slot, prompt[keep:])

    def _decode(self, slot: _Slot, tokens: Sequence[int], *, all_outputs: bool = False) -> None:
        for start in range(0, len(tokens), slot.step):
            chunk = tokens[start : start + slot.step]
            slot.batch.set_batch(chunk, n_past=len(slot.cached), logits_all=all_outputs)
            try:
                slot.ctx.decode(slot.batch)
            except RuntimeError as exc:
                slot.ctx.kv_cache_clear()
                slot.cached.clear()
                raise BackendError(str(exc)) from exc
            slot.cached.extend(chunk)

    def _logits(self, slot: _Slot) -> np.ndarray:
        """The last position's logits, as a writable view on the context's own buffer."""
        from llama_cpp import llama_cpp as C

        pointer = C.llama_get_logits_ith(slot.ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    # Embeddings

    async def embed(self, prompts: Sequence[list[int]]) -> list[list[float]]:
        slot = await self._free.get()
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._pool, self._embed_all, slot, prompts)
        job.add_done_callback(lambda _: self._release(slot))
        return await job

    def _embed_all(self, slot: _Slot, prompts: Sequence[list[int]]) -> list[list[float]]:
        """Mean of the final (normed) hidden states over the prompt, L2-normalised, as the hf
        backend does; the context's KV cache is cleared before and after."""
        from llama_cpp import llama_cpp as C

        vectors = []
        C.llama_set_embeddings(slot.ctx.ctx, True)
        try:
            for ids in prompts:
                slot.ctx.kv_cache_clear()
                slot.cached.clear()
                total = np.zeros(self._model.n_embd(), dtype=np.float64)
                for start in range(0, len(ids), EMBED_CHUNK):
                    chunk = ids[start : start + EMBED_CHUNK]
                    self._decode(slot, chunk, all_outputs=True)
                    hidden = np.ctypeslib.as_array(
                        C.llama_get_embeddings(slot.ctx.ctx), shape=(len(chunk), total.size)
                    )
                    total += hidden.sum(axis=0)
                pooled = total / len(ids)
                vectors.append((pooled / (np.linalg.norm(pooled) or 1.0)).tolist())
        finally:
            C.llama_set_embeddings(slot.ctx.ctx, False)
            slot.ctx.kv_cache_clear()
            slot.cached.clear()
        return vectors
