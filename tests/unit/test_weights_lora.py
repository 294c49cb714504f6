"""`corral model merge-lora` on a tiny random LLaMA and PEFT adapters built here.

The expected weights are computed from the adapter file itself, not through PEFT: each target
projection W + (alpha / r) * B @ A, the embedding and LM head replaced by the adapter's full
(vocabulary-extended) matrices, every other tensor the base's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_model import build_tiny_llama

from corral.cli import main
from model_worker.weights.checkpoint import WeightsError
from model_worker.weights.lora import merge_lora

NEW_TOKENS = ["<zh_1>", "<zh_2>", "<zh_3>"]
RANK, ALPHA = 4, 8


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(path)))
    return out


def _build_adapter(base: Path, out: Path, *, extend_vocab: str | None) -> Path:
    """A trained-looking adapter: random LoRA factors (PEFT starts B at zero). `extend_vocab`
    adds tokens and saves the grown matrices as Chinese-LLaMA/Alpaca do ("modules_to_save":
    trained embed_tokens / lm_head) or as PEFT does by itself for a resized model
    ("saved_embeddings")."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    modules_to_save = ["embed_tokens", "lm_head"] if extend_vocab == "modules_to_save" else None
    if extend_vocab:
        tokenizer.add_tokens(NEW_TOKENS)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    config = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        target_modules=["q_proj", "v_proj"],
        modules_to_save=modules_to_save,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    torch.manual_seed(11)
    with torch.no_grad():
        for param in peft_model.parameters():
            if param.requires_grad:  # LoRA factors and the modules to save
                param.copy_(torch.randn_like(param) * 0.05)
    peft_model.save_pretrained(out, save_embedding_layers=extend_vocab == "saved_embeddings")
    if extend_vocab:
        tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("lora") / "base", hidden=64)


@pytest.mark.parametrize("extend_vocab", ["modules_to_save", "saved_embeddings", None])
def test_merged_weights_equal_base_plus_lora_tensor_for_tensor(
    base: Path, tmp_path: Path, extend_vocab: str | None
) -> None:
    adapter = _build_adapter(base, tmp_path / "adapter", extend_vocab=extend_vocab)
    out = merge_lora(base, adapter, tmp_path / "merged")
    merged, base_tensors = _tensors(out), _tensors(base)
    lora = load_file(str(adapter / "adapter_model.safetensors"))
    expected = dict(base_tensors)
    for key, a in lora.items():
        if ".lora_A." in key:
            module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
            b = lora[key.replace(".lora_A.", ".lora_B.")]
            expected[f"{module}.weight"] = base_tensors[f"{module}.weight"] + (b @ a) * (
                ALPHA / RANK
            )
        elif ".lora_B." not in key:  # full matrices saved with the adapter
            expected[key.removeprefix("base_model.model.")] = a
    assert sorted(merged) == sorted(expected)
    changed = [n for n in expected if not torch.equal(expected[n], base_tensors.get(n, a))]
    assert len(changed) >= 4  # the merge did something to check
    for name, tensor in expected.items():
        torch.testing.assert_close(merged[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_the_adapters_tokenizer_comes_along(base: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = _build_adapter(base, tmp_path / "adapter", extend_vocab="modules_to_save")
    out = merge_lora(base, adapter, tmp_path / "merged")
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == len(AutoTokenizer.from_pretrained(base)) + len(NEW_TOKENS)
    assert len(tokenizer("<zh_2>", add_special_tokens=False)["input_ids"]) == 1
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_an_adapter_for_another_base_fails_naming_the_tensor(base: Path, tmp_path: Path) -> None:
    other = build_tiny_llama(tmp_path / "other-base", hidden=32)
    adapter = _build_adapter(other, tmp_path / "adapter", extend_vocab=None)
    with pytest.raises(WeightsError, match=r"adapter tensor '[^']*layers\.0\.self_attn\.\w_proj"):
        merge_lora(base, adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_the_command_line(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    adapter = _build_adapter(base, tmp_path / "adapter", extend_vocab=None)
    args = ["model", "merge-lora", "--base", str(base), "--lora", str(adapter)]
    assert main([*args, "--out", str(tmp_path / "merged")]) == 0
    assert main([*args, "--out", str(tmp_path / "merged")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["model", "merge-lora", "--base", str(base), "--lora", str(base), "--out",
                 str(tmp_path / "x")]) == 2  # fmt: skip
    assert "not a PEFT adapter" in capsys.readouterr().err
