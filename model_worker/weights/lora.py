"""`corral model merge-lora`: a base model with a LoRA adapter merged in, through PEFT.

The vllm backend serves an adapter as a model of its own; the hf and llamacpp paths need the
merged weights. Chinese-LLaMA/Alpaca and other adapters also extend the vocabulary: they carry
the full embedding and LM-head matrices (`modules_to_save`, or PEFT's saved embedding layers)
and a tokenizer with the new tokens. The base is resized to the adapter's rows before loading,
and the merged model gets the adapter folder's tokenizer when it has one.

Whole models are loaded here (PEFT merges modules in memory); the output is written atomically.
An adapter that does not fit the base fails with the adapter tensor named.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from model_worker.weights.checkpoint import WeightsError, atomic_folder

logger = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
_MISMATCH = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\(\[([^\]]*)\]\) from "
    r"checkpoint, the shape in current model is torch\.Size\(\[([^\]]*)\]\)"
)
_EMBEDDING_KEYS = ("embed_tokens.weight", "lm_head.weight")


def merge_lora(
    base: Path, lora: Path, out: Path, *, dtype: str = "auto", max_shard_size: str = "2GB"
) -> Path:
    """Write base + LoRA (merged) and the right tokenizer to `out` (which must not exist)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = _adapter_config(lora)
    if config.get("peft_type", "LORA") != "LORA":
        raise WeightsError(f"{lora} holds a {config['peft_type']} adapter, not LoRA")
    rows = _embedding_rows(lora)
    has_tokenizer = any((lora / name).is_file() for name in TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(lora if has_tokenizer else base)
    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    base_rows = int(model.get_input_embeddings().weight.shape[0])  # type: ignore[index]
    if rows is not None and rows != base_rows:
        model.resize_token_embeddings(rows, mean_resizing=False)  # the adapter brings them
    elif rows is None and len(tokenizer) > base_rows:
        raise WeightsError(
            f"the adapter's tokenizer has {len(tokenizer)} tokens but the base model has "
            f"{base_rows} embedding rows, and the adapter carries no embedding rows for the rest"
        )
    merged = _merge(model, lora)
    with atomic_folder(out) as tmp:
        merged.save_pretrained(tmp, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(tmp)
    logger.info("merged %s into %s -> %s", lora, base, out)
    return out


def _merge(model: Any, lora: Path) -> Any:
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, lora)
    except RuntimeError as exc:
        found = _MISMATCH.search(str(exc))
        if found is None:
            raise WeightsError(f"the adapter does not fit the base model: {exc}") from exc
        name, theirs, ours = found.groups()
        raise WeightsError(
            f"adapter tensor {name!r} has shape ({theirs}) but the base model needs ({ours}): "
            "the adapter was trained for another base model"
        ) from exc
    except ValueError as exc:  # e.g. target modules the base model does not have
        raise WeightsError(f"the adapter does not fit the base model: {exc}") from exc
    return peft_model.merge_and_unload()


def _adapter_config(lora: Path) -> dict[str, Any]:
    path = lora / "adapter_config.json"
    if not path.is_file():
        raise WeightsError(f"{lora} has no adapter_config.json: it is not a PEFT adapter")
    config = json.loads(path.read_text())
    if not isinstance(config, dict):
        raise WeightsError(f"{path} is not a JSON object")
    return config


def _embedding_rows(lora: Path) -> int | None:
    """Rows of the full embedding / LM-head matrices the adapter carries, if any."""
    for name in ADAPTER_FILES:
        path = lora / name
        if path.is_file():
            shapes = _shapes(path)
            break
    else:
        raise WeightsError(f"{lora} has no {' or '.join(ADAPTER_FILES)}")
    rows = {
        shape[0]
        for key, shape in shapes.items()
        if key.endswith(_EMBEDDING_KEYS) and "lora_" not in key and shape
    }
    if len(rows) > 1:
        raise WeightsError(f"the adapter's embedding and LM head disagree on rows: {sorted(rows)}")
    return rows.pop() if rows else None


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    import torch

    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    return {key: tuple(value.shape) for key, value in state.items()}
