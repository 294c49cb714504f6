"""llama.cpp's own vocabulary behind the small part of a transformers tokenizer the worker uses.

The serving layer (prompts, stop ids, detokenization, logprobs) calls a tokenizer as
`tok(text, add_special_tokens=...)["input_ids"]`, `tok.decode(ids, skip_special_tokens=...)`,
`len(tok)` and reads `bos_token`/`eos_token` (+ `_id`). This adapter answers those from the GGUF
that llama.cpp has loaded anyway, instead of rebuilding a transformers tokenizer from it:

- the ids are the engine's own (llama.cpp's pre-tokenizer), so a prompt is tokenized exactly as
  llama.cpp and `llama_cpp.server` tokenize it;
- it is ready at once for any vocabulary llama.cpp knows (transformers' GGUF conversion takes
  ~10 s for SmolLM2's and ~30 s for Llama-3's, and only knows some architectures);
- the worker imports neither transformers nor torch, which keeps its memory small.

Special tokens in text are parsed (`<|im_end|>` in a template becomes its id, as transformers
does for added tokens) and skipped on decode when asked, like transformers.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any


class LlamaCppTokenizer:
    def __init__(self, vocab: Any) -> None:
        """`vocab`: a `llama_vocab` pointer of a loaded llama.cpp model."""
        from llama_cpp import llama_cpp as C

        self._C = C
        self._vocab = vocab
        self._size = int(C.llama_vocab_n_tokens(vocab))
        self.bos_token_id = self._token_or_none(C.llama_vocab_bos(vocab))
        self.eos_token_id = self._token_or_none(C.llama_vocab_eos(vocab))
        self.bos_token = self._spell(self.bos_token_id)
        self.eos_token = self._spell(self.eos_token_id)

    def __len__(self) -> int:
        return self._size

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text, add_special_tokens=add_special_tokens)}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        data = text.encode("utf-8")
        room = len(data) + 8  # a token covers at least one byte, plus BOS/EOS
        while True:
            buf = (self._C.llama_token * room)()
            n = self._C.llama_tokenize(
                self._vocab, data, len(data), buf, room, add_special_tokens, True
            )
            if n >= 0:
                return list(buf[:n])
            room = -n

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        if not ids:
            return ""
        tokens = (self._C.llama_token * len(ids))(*ids)
        room = 16 * len(ids) + 16
        while True:
            buf = ctypes.create_string_buffer(room)
            n = self._C.llama_detokenize(
                self._vocab, tokens, len(ids), buf, room, False, not skip_special_tokens
            )
            if n >= 0:
                return buf.raw[:n].decode("utf-8", errors="replace")
            room = -n + 1

    def special_texts(self) -> list[str]:
        """The spellings of the vocabulary's control tokens (`<|im_end|>`, `<s>`, ...)."""
        is_control = getattr(self._C, "llama_vocab_is_control", None)
        if is_control is None:
            return []
        ids = [t for t in range(self._size) if is_control(self._vocab, t)]
        return [text for text in (self.decode([t]) for t in ids) if text]

    def _token_or_none(self, token: int) -> int | None:
        return token if 0 <= token < self._size else None

    def _spell(self, token: int | None) -> str | None:
        return None if token is None else self.decode([token])
