"""Conversation templates: OpenAI-style messages -> the prompt text a model was trained on.

Two kinds of template share one interface (`Template`): registry rows (`ConversationTemplate`,
one per model family, see `table.py`) and `ChatTemplate`, a model's own Hugging Face Jinja
`chat_template` rendered in a sandbox. `resolve_template` picks one for a model: an explicit
name, else the model's chat_template, else the most specific name rule for the first of the
model's names (its path, then its served name) that a rule matches, else `raw` with a
warning. Model names match rules by whole name tokens, most specific rule first (`rules.py`).

Conventions the worker relies on:

- BOS. Registry templates never write the BOS token. The worker tokenizes prompts with
  add_special_tokens=True, so the tokenizer adds exactly one BOS where the model wants one
  (LLaMA-1/2 `<s>`, Llama-3 `<|begin_of_text|>`). HF chat templates usually start with
  `{{ bos_token }}` themselves; the worker then drops the doubled leading BOS. Special tokens
  *inside* a prompt are written literally and the tokenizer maps them to their ids: Llama-2
  multi-turn prompts contain `</s><s>` between turns exactly as Meta's reference code encodes
  them, and Vicuna v1.1 / Alpaca replies end in a literal `</s>`.
- Messages are dicts {"role": "system" | "user" | "assistant", "content": str}. At most one
  system message, first; without one the template's default system message is used, and an
  explicit empty one means no system prompt at all.
- A trailing assistant message is a prefix for the model to continue: it is rendered without
  its end-of-turn and no generation prompt follows it (an empty one renders the generation
  prompt instead).
- `add_generation_prompt` (default True) appends the assistant's turn opener after a final
  user message.
- Bad input raises `TemplateError` (a ValueError), which the worker answers with HTTP 400.
- `stop_strings` / `stop_token_ids` are stops on top of the tokenizer's own EOS; the ids are in
  the model family's own vocabulary (e.g. Llama-3: 128001, 128009).

Nothing here does I/O or networking; importing the package has no side effects beyond
building the immutable default registry.
"""

from .base import ConversationTemplate, Template, TemplateError
from .hf import HF_TEMPLATE_NAME, ChatTemplate
from .registry import DEFAULT_REGISTRY, Registry, get_template, list_templates, match_template
from .resolve import Resolution, resolve_template
from .rules import NameRule

__all__ = [
    "DEFAULT_REGISTRY",
    "HF_TEMPLATE_NAME",
    "ChatTemplate",
    "ConversationTemplate",
    "NameRule",
    "Registry",
    "Resolution",
    "Template",
    "TemplateError",
    "get_template",
    "list_templates",
    "match_template",
    "resolve_template",
]
