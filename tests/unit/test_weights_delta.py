"""`corral model apply-delta` on tiny random LLaMA checkpoints built here.

The delta is drawn at random and the target defined as base + delta (summed in float32, stored
in the delta's dtype), so the tool's output must equal the target exactly, tensor for tensor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_model import build_tiny_llama

from corral.cli import main
from model_worker.weights.checkpoint import WeightsError
from model_worker.weights.delta import apply_delta

EMBED, HEAD = "model.embed_tokens.weight", "lm_head.weight"


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(path)))
    return out


def _make_delta(
    base: Path, delta: Path, *, fmt: str, shards: int, dtype: torch.dtype, extra_vocab: int = 0
) -> dict[str, torch.Tensor]:
    """Write a delta folder for `base` and return the target it describes."""
    base_tensors = _tensors(base)
    config = json.loads((base / "config.json").read_text())
    config["vocab_size"] += extra_vocab
    gen = torch.Generator().manual_seed(7)
    deltas, target = {}, {}
    for name, b in base_tensors.items():
        if name in (EMBED, HEAD) and extra_vocab:
            b = torch.cat([b, torch.zeros(extra_vocab, *b.shape[1:], dtype=b.dtype)])
        d = (torch.randn(b.shape, generator=gen) * 0.01).to(dtype)
        deltas[name] = d
        target[name] = (b.float() + d.float()).to(dtype)
    delta.mkdir()
    names = sorted(deltas)
    groups = [names[i::shards] for i in range(shards)]
    suffix, prefix = (".bin", "pytorch_model") if fmt == "bin" else (".safetensors", "model")
    weight_map = {}
    for i, group in enumerate(groups, 1):
        shard = f"{prefix}-{i:05d}-of-{shards:05d}{suffix}"
        part = {n: deltas[n].contiguous() for n in group}
        if fmt == "bin":
            torch.save(part, delta / shard)
        else:
            save_file(part, str(delta / shard))
        weight_map.update(dict.fromkeys(group, shard))
    index = "pytorch_model.bin.index.json" if fmt == "bin" else "model.safetensors.index.json"
    (delta / index).write_text(json.dumps({"weight_map": weight_map}))
    (delta / "config.json").write_text(json.dumps(config))
    shutil.copy(base / "tokenizer.json", delta / "tokenizer.json")
    return target


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("delta") / "base", hidden=64)


@pytest.mark.parametrize(
    ("fmt", "dtype", "extra_vocab"),
    [("bin", torch.float16, 1), ("safetensors", torch.bfloat16, 0)],
)
def test_result_equals_the_target_tensor_for_tensor(
    base: Path, tmp_path: Path, fmt: str, dtype: torch.dtype, extra_vocab: int
) -> None:
    target = _make_delta(
        base, tmp_path / "delta", fmt=fmt, shards=3, dtype=dtype, extra_vocab=extra_vocab
    )
    out = apply_delta(base, tmp_path / "delta", tmp_path / "out")
    result = _tensors(out)
    assert sorted(result) == sorted(target)
    for name, tensor in target.items():
        assert result[name].dtype == dtype, name
        assert torch.equal(result[name], tensor), name
    # the delta's sharding is kept, with an index; config and tokenizer come from the delta
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 3
    config = json.loads((out / "config.json").read_text())
    assert (
        config["vocab_size"]
        == json.loads((base / "config.json").read_text())["vocab_size"] + extra_vocab
    )
    assert (out / "tokenizer.json").is_file()


def test_the_result_loads_as_a_model(base: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    _make_delta(base, tmp_path / "delta", fmt="bin", shards=2, dtype=torch.float32, extra_vocab=1)
    out = apply_delta(base, tmp_path / "delta", tmp_path / "out")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == model.config.vocab_size


def test_a_tied_base_lends_its_embedding_to_the_lm_head(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "base")
    base = tmp_path / "base"
    assert HEAD not in _tensors(base)
    (tmp_path / "delta").mkdir()
    embed = _tensors(base)[EMBED]
    head_delta = torch.full_like(embed, 0.5)
    deltas = {n: torch.zeros_like(t) for n, t in _tensors(base).items()} | {HEAD: head_delta}
    save_file(deltas, str(tmp_path / "delta" / "model.safetensors"))
    untied = {**json.loads((base / "config.json").read_text()), "tie_word_embeddings": False}
    (tmp_path / "delta" / "config.json").write_text(json.dumps(untied))
    result = _tensors(apply_delta(base, tmp_path / "delta", tmp_path / "out"))
    assert torch.equal(result[HEAD], embed + 0.5)
    assert torch.equal(result[EMBED], embed)


def test_a_mismatched_pair_fails_naming_the_tensor(base: Path, tmp_path: Path) -> None:
    _make_delta(base, tmp_path / "delta", fmt="safetensors", shards=1, dtype=torch.float32)
    shard = tmp_path / "delta" / "model-00001-of-00001.safetensors"
    tensors = load_file(str(shard))
    name = "model.layers.1.mlp.up_proj.weight"
    tensors[name] = tensors[name].T.contiguous()  # another model's shape
    save_file(tensors, str(shard))
    with pytest.raises(WeightsError, match=rf"tensor '{name}': base shape \(\d+, \d+\) but delta"):
        apply_delta(base, tmp_path / "delta", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delta"]  # nothing left behind


def test_a_delta_missing_a_base_tensor_fails_naming_it(base: Path, tmp_path: Path) -> None:
    _make_delta(base, tmp_path / "delta", fmt="safetensors", shards=1, dtype=torch.float32)
    shard = tmp_path / "delta" / "model-00001-of-00001.safetensors"
    tensors = load_file(str(shard))
    del tensors["model.norm.weight"]
    save_file(tensors, str(shard))
    index = tmp_path / "delta" / "model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"]
    del weight_map["model.norm.weight"]
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(WeightsError, match=r"base tensor 'model\.norm\.weight' has no delta"):
        apply_delta(base, tmp_path / "delta", tmp_path / "out")


def test_the_command_line(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_delta(base, tmp_path / "delta", fmt="bin", shards=2, dtype=torch.float16)
    args = ["model", "apply-delta", "--base", str(base), "--delta", str(tmp_path / "delta")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    assert f"wrote {tmp_path / 'out'}" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "out")]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "out32"), "--dtype", "float32"]) == 0
    assert all(t.dtype == torch.float32 for t in _tensors(tmp_path / "out32").values())
