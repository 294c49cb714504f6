"""Build a tiny random-weight LLaMA model with its own byte-level BPE tokenizer, offline.

Fixed seeds make it identical on every run; it loads in well under a second and decodes
hundreds of tokens per second on a CPU, so tests can start real workers on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n'"
    " }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France. Rome is the capital of Italy.",
    "Hello! How can I help you today? I am a helpful assistant.",
    "def add(a, b):\n    return a + b\n",
    "Ein kleiner Test mit Umlauten: äöü ß. 中文测试。 emoji 🙂",
    "one two three four five six seven eight nine ten",
    "user assistant system message content role",
] * 20


def build_tiny_llama(
    path: Path, *, seed: int = 0, layers: int = 2, hidden: int = 128, init_std: float = 0.02
) -> Path:
    """Write config, weights and tokenizer to `path` (once) and return it.

    A larger `init_std` gives peaked next-token distributions, so greedy decoding does not
    hinge on rounding differences between engines.
    """
    if (path / "config.json").is_file():
        return path
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=init_std,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    fast.save_pretrained(tmp)
    tmp.rename(path)
    return path


def build_tiny_lora(path: Path, base: Path, *, seed: int = 1, rank: int = 8) -> Path:
    """A PEFT-format LoRA adapter for `base` on q/v projections, strong enough to change
    greedy output (written directly: no peft package needed)."""
    if (path / "adapter_config.json").is_file():
        return path
    import json

    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base)
    head_dim = config.hidden_size // config.num_attention_heads
    outs = {
        "q_proj": config.num_attention_heads * head_dim,
        "v_proj": config.num_key_value_heads * head_dim,
    }
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(config.num_hidden_layers):
        for name, out in outs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{name}"
            tensors[f"{prefix}.lora_A.weight"] = (
                torch.randn(rank, config.hidden_size, generator=gen) * 0.5
            )
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(out, rank, generator=gen) * 0.5
    path.mkdir(parents=True)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": rank,
                "lora_alpha": 2 * rank,
                "lora_dropout": 0.0,
                "target_modules": list(outs),
                "bias": "none",
                "fan_in_fan_out": False,
                "base_model_name_or_path": str(base),
                "modules_to_save": None,
            }
        )
    )
    return path


def tiny_tokenizer() -> Any:
    """The tiny model's tokenizer alone: byte-level BPE with ChatML's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
    )
    fast.chat_template = CHATML
    return fast
