"""Which template formats a model: the one decision the worker makes, in one place.

Precedence: an explicit template name > the model's own HF chat_template > the most specific
name rule for the first of the model's names that any rule matches > `raw`, with a warning.
A model has several names: the path or alias it was loaded from usually names its family
best, while the name it is served under may be anything.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Literal

from .base import Template, TemplateError
from .hf import HF_TEMPLATE_NAME, ChatTemplate
from .registry import DEFAULT_REGISTRY, Registry, warn_unmatched

logger = logging.getLogger(__name__)

Reason = Literal["explicit", "chat_template", "name_rule", "fallback_raw"]


@dataclasses.dataclass(frozen=True, slots=True)
class Resolution:
    template: Template
    reason: Reason
    rule: str | None = None


def resolve_template(
    *,
    explicit: str | None,
    names: Sequence[str],
    chat_template: str | None,
    special_tokens: Mapping[str, str],
    registry: Registry = DEFAULT_REGISTRY,
) -> Resolution:
    """Pick the template for a model known by `names` (most telling first: its path, then the
    name it is served under).

    `explicit` may also be "hf-chat-template" to insist on the model's chat_template. A
    chat_template that is empty or only whitespace counts as absent (it would render nothing).
    Only a model that ends on `raw` is warned about.
    """
    if not names:
        raise ValueError("a model needs at least one name")
    model_name = names[0]
    has_chat_template = chat_template is not None and chat_template.strip() != ""
    if chat_template is not None and not has_chat_template:
        logger.warning("model %r has an empty chat_template; ignoring it", model_name)
    if explicit:
        if explicit == HF_TEMPLATE_NAME:
            if chat_template is None or not has_chat_template:
                raise TemplateError(
                    f"template {HF_TEMPLATE_NAME!r} was asked for, "
                    f"but model {model_name!r} has no chat_template"
                )
            return Resolution(ChatTemplate(chat_template, special_tokens), "explicit")
        return Resolution(registry.get(explicit), "explicit")
    if chat_template is not None and has_chat_template:
        return Resolution(ChatTemplate(chat_template, special_tokens), "chat_template")
    for name in names:
        found = registry.find(name)
        if found is not None:
            return Resolution(found[0], "name_rule", found[1])
    warn_unmatched(dict.fromkeys(names))
    return Resolution(registry.fallback(), "fallback_raw")
