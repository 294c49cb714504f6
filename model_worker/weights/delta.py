"""`corral model apply-delta`: target = base + delta, tensor by tensor, one shard at a time.

Publishers that may not redistribute LLaMA (Vicuna v0, StableVicuna, several Alpaca and
Chinese-LLaMA releases) ship the difference to it; FastChat's `apply_delta` adds it back. Here:

- the output follows the delta's sharding; each output shard is computed from one delta shard
  and the base tensors it needs, written, and dropped, so memory peaks at about one shard beyond
  the tensors being added, never two whole models;
- a delta that grew the vocabulary (Vicuna v0 added a pad token) has more embedding/LM-head rows
  than the base: the base is padded with zero rows first, as FastChat resizes before adding;
- the sum is taken in float32 and stored in the delta's dtype (or `dtype`);
- a tied base (no `lm_head.weight`) lends its embedding to a delta's LM head;
- config and tokenizer come from the delta folder (the base's fill in what it lacks);
- base and delta that do not belong together fail with the tensor named: a shape that differs,
  a tensor one side lacks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from model_worker.weights.checkpoint import (
    Checkpoint,
    WeightsError,
    atomic_folder,
    copy_side_files,
    output_shard_name,
    write_index,
)

logger = logging.getLogger(__name__)

EMBEDDING = "model.embed_tokens.weight"
LM_HEAD = "lm_head.weight"
_BUFFERS = ("rotary_emb.inv_freq",)  # recomputed by the model, absent from newer checkpoints
DTYPES = ("auto", "float16", "bfloat16", "float32")


def apply_delta(base: Path, delta: Path, out: Path, *, dtype: str = "auto") -> Path:
    """Write base + delta to `out` (which must not exist) and return it."""
    import torch
    from safetensors.torch import save_file
    from tqdm import tqdm

    if dtype not in DTYPES:
        raise WeightsError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    want = None if dtype == "auto" else getattr(torch, dtype)
    base_ckpt, delta_ckpt = Checkpoint(base), Checkpoint(delta)
    _check_coverage(base_ckpt, delta_ckpt)
    weight_map: dict[str, str] = {}
    total_size = 0
    with atomic_folder(out) as tmp:
        copy_side_files(base, tmp)
        copy_side_files(delta, tmp)
        bar = tqdm(total=len(delta_ckpt.names()), unit="tensor", desc="apply-delta", disable=None)
        with bar:
            for shard, names in delta_ckpt.shards.items():
                target: dict[str, Any] = {}
                for name in names:
                    d = delta_ckpt.get(name)
                    b = _base_tensor(base_ckpt, delta_ckpt, name, d)
                    summed = b.to(torch.float32) + d.to(torch.float32)
                    target[name] = summed.to(want or d.dtype).contiguous()
                    bar.update()
                out_name = output_shard_name(shard)
                save_file(target, str(tmp / out_name), metadata={"format": "pt"})
                total_size += sum(t.numel() * t.element_size() for t in target.values())
                weight_map.update(dict.fromkeys(target, out_name))
                delta_ckpt.close_shard(shard)
        if len(delta_ckpt.shards) > 1:
            write_index(tmp, weight_map, total_size)
        elif weight_map:  # one shard: the conventional single-file name
            (tmp / next(iter(weight_map.values()))).rename(tmp / "model.safetensors")
        if want is not None:
            _set_config_dtype(tmp / "config.json", dtype)
    logger.info("applied %s to %s -> %s", delta, base, out)
    return out


def _check_coverage(base: Checkpoint, delta: Checkpoint) -> None:
    """Every base weight needs its delta (a tied delta needs no LM head)."""
    tied = LM_HEAD not in delta and bool(delta.config.get("tie_word_embeddings", False))
    for name in base.names():
        if name in delta or name.endswith(_BUFFERS) or (tied and name == LM_HEAD):
            continue
        raise WeightsError(
            f"base tensor {name!r} has no delta in {delta.folder}: "
            "base and delta do not belong together"
        )


def _base_tensor(base: Checkpoint, delta: Checkpoint, name: str, d: Any) -> Any:
    import torch

    if name in base:
        b = base.get(name)
    elif name == LM_HEAD and EMBEDDING in base:  # a tied base: its embedding is its LM head
        b = base.get(EMBEDDING)
    else:
        raise WeightsError(
            f"delta tensor {name!r} is not in the base model {base.folder}: "
            "base and delta do not belong together"
        )
    if b.shape == d.shape:
        return b
    grew = (
        b.dim() == d.dim() >= 1
        and b.shape[1:] == d.shape[1:]
        and b.shape[0] == base.vocab_size()
        and d.shape[0] == delta.vocab_size()
        and d.shape[0] > b.shape[0]
    )
    if not grew:
        raise WeightsError(
            f"tensor {name!r}: base shape {tuple(b.shape)} but delta shape {tuple(d.shape)}; "
            "base and delta do not belong together"
        )
    rows = torch.zeros((d.shape[0] - b.shape[0], *b.shape[1:]), dtype=b.dtype)
    return torch.cat([b, rows])  # new tokens: the delta holds their rows in full


def _set_config_dtype(path: Path, dtype: str) -> None:
    import json

    if not path.is_file():
        return
    config = json.loads(path.read_text())
    for key in ("torch_dtype", "dtype"):
        if key in config:
            config[key] = dtype
    path.write_text(json.dumps(config, indent=2) + "\n")
