"""Hugging Face checkpoints on disk, one shard at a time: read lazily, write atomically.

A checkpoint is a folder with `config.json` and its weights in safetensors or PyTorch `.bin`
files, one file or shards listed by an index (`*.index.json`). Tensors are read one at a time
(safetensors is memory-mapped; `.bin` files are loaded with `mmap=True`), so only what is being
computed sits in memory. Output goes to a temporary folder next to the target that is renamed
into place at the end: a failure leaves nothing behind, and an existing folder is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class WeightsError(ValueError):
    """Input the weight tools cannot use: the message says what and where (CLI exit 2)."""


class Checkpoint:
    """A checkpoint folder: which shard holds which tensor, and lazy access to each tensor."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        if not folder.is_dir():
            raise WeightsError(f"{folder} is not a directory")
        self.shards = _shard_map(folder)  # shard file name -> its tensor names, in file order
        self._where = {name: shard for shard, names in self.shards.items() for name in names}
        self._open: dict[str, Any] = {}
        self.config: dict[str, Any] = _read_json(folder / "config.json")

    def names(self) -> list[str]:
        return list(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def get(self, name: str) -> Any:
        """One tensor (a torch.Tensor), read from its shard now."""
        shard = self._where[name]
        handle = self._open.get(shard)
        if handle is None:
            handle = self._open[shard] = _open_shard(self.folder / shard)
        if isinstance(handle, dict):
            return handle[name]
        return handle.get_tensor(name)

    def close_shard(self, shard: str) -> None:
        self._open.pop(shard, None)

    def vocab_size(self) -> int | None:
        size = self.config.get("vocab_size")
        return size if isinstance(size, int) else None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not readable JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _shard_map(folder: Path) -> dict[str, list[str]]:
    for index_name in INDEX_FILES:
        index = folder / index_name
        if index.is_file():
            weight_map = _read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise WeightsError(f"{index} has no weight_map")
            shards: dict[str, list[str]] = {}
            for name, shard in weight_map.items():
                if not (folder / shard).is_file():
                    raise WeightsError(f"{index} lists {shard}, which is missing")
                shards.setdefault(shard, []).append(name)
            return shards
    for single in SINGLE_FILES:
        if (folder / single).is_file():
            return {single: _tensor_names(folder / single)}
    raise WeightsError(
        f"no weights in {folder}: expected {', '.join(SINGLE_FILES)} or a sharded index "
        f"({', '.join(INDEX_FILES)})"
    )


def _tensor_names(path: Path) -> list[str]:
    handle = _open_shard(path)
    return list(handle.keys())


def _open_shard(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        return safe_open(str(path), framework="pt")
    import torch

    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise WeightsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    return state


def output_shard_name(shard: str) -> str:
    """`pytorch_model-00001-of-00002.bin` -> `model-00001-of-00002.safetensors`."""
    stem = shard.rsplit(".", 1)[0]
    if stem.startswith("pytorch_model"):
        stem = "model" + stem[len("pytorch_model") :]
    return f"{stem}.safetensors"


def copy_side_files(source: Path, target: Path) -> None:
    """Config, generation config, tokenizer files: everything but weights and indexes."""
    for item in sorted(source.iterdir()):
        if item.is_file() and not item.name.endswith((*WEIGHT_SUFFIXES, ".index.json")):
            shutil.copy2(item, target / item.name)


@contextlib.contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out`, renamed to `out` when the block succeeds."""
    if out.exists():
        raise WeightsError(f"{out} already exists; choose a new --out folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_index(folder: Path, weight_map: dict[str, str], total_size: int) -> None:
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / INDEX_FILES[0]).write_text(json.dumps(index, indent=2) + "\n")
