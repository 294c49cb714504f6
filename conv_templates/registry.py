"""The registry: templates by unique name, plus the name rules, checked once at construction.

`DEFAULT_REGISTRY` is built from `table.py` at import and never changes afterwards; the module
functions (`get_template`, `list_templates`, `match_template`) read it. Tests and tools that
want another table build their own `Registry`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from types import MappingProxyType

from .base import ConversationTemplate, TemplateError
from .rules import NameRule, best_rule, unexplained_words
from .table import RULES, TEMPLATES

logger = logging.getLogger(__name__)

FALLBACK = "raw"
RESERVED_NAMES = frozenset({"hf-chat-template"})


class Registry:
    """Templates with unique names and rules that point only at them; immutable."""

    def __init__(
        self, templates: Iterable[ConversationTemplate], rules: Iterable[NameRule]
    ) -> None:
        by_name: dict[str, ConversationTemplate] = {}
        for template in templates:
            if template.name in by_name:
                raise ValueError(f"duplicate template name {template.name!r}")
            if template.name in RESERVED_NAMES:
                raise ValueError(f"template name {template.name!r} is reserved")
            by_name[template.name] = template
        if FALLBACK not in by_name:
            raise ValueError(f"the registry needs a {FALLBACK!r} template for unknown models")
        patterns: dict[tuple[str, ...], str] = {}
        rules = tuple(rules)
        for rule in rules:
            if rule.template not in by_name:
                raise ValueError(
                    f"rule {rule.pattern!r} points at unknown template {rule.template!r}"
                )
            if rule.tokens in patterns:
                raise ValueError(
                    f"rule {rule.pattern!r} repeats rule {patterns[rule.tokens]!r} "
                    "(same name tokens)"
                )
            patterns[rule.tokens] = rule.pattern
        self._templates = MappingProxyType(dict(sorted(by_name.items())))
        self._rules = rules

    @property
    def rules(self) -> tuple[NameRule, ...]:
        return self._rules

    def names(self) -> list[str]:
        return list(self._templates)

    def templates(self) -> list[ConversationTemplate]:
        """All templates, sorted by name."""
        return list(self._templates.values())

    def get(self, name: str) -> ConversationTemplate:
        """The template called `name` (case-insensitive); TemplateError naming close names."""
        template = self._templates.get(name) or self._templates.get(name.strip().lower())
        if template is not None:
            return template
        close = difflib.get_close_matches(name.strip().lower(), self._templates, n=3, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise TemplateError(
            f"unknown conversation template {name!r}{hint} ('corral templates list' shows them all)"
        )

    def find(self, model_name: str) -> tuple[ConversationTemplate, str] | None:
        """(template, matching rule pattern) for a model name or path; None if no rule matches.

        A base-model rule (`raw`) on a name with words the rule does not explain warns: it
        looks like a fine-tune the table does not know.
        """
        rule = best_rule(self._rules, model_name)
        if rule is None:
            return None
        if rule.template == FALLBACK:
            extra = unexplained_words(rule, model_name)
            if extra:
                logger.warning(
                    "model %r matches only the base-model rule %r (%r, no template), but its "
                    "name also says %s: it looks like a fine-tune. Name its template "
                    "explicitly (--conv-template) if it was trained on one.",
                    model_name,
                    rule.pattern,
                    FALLBACK,
                    ", ".join(repr(word) for word in extra),
                )
        return self._templates[rule.template], rule.pattern

    def fallback(self) -> ConversationTemplate:
        """The template for a model no rule matches: messages joined, no template."""
        return self._templates[FALLBACK]

    def match(self, model_name: str) -> tuple[ConversationTemplate, str | None]:
        """(template, matching rule pattern) for a model name or path; (raw, None) if none."""
        found = self.find(model_name)
        if found is None:
            warn_unmatched([model_name])
            return self.fallback(), None
        return found


def warn_unmatched(names: Iterable[str]) -> None:
    logger.warning(
        "no conversation template rule matches model %s; using %r (messages joined, "
        "no template). Name a template explicitly to format it properly.",
        " or ".join(repr(n) for n in names),
        FALLBACK,
    )


DEFAULT_REGISTRY = Registry(TEMPLATES, RULES)


def get_template(name: str) -> ConversationTemplate:
    return DEFAULT_REGISTRY.get(name)


def list_templates() -> list[ConversationTemplate]:
    return DEFAULT_REGISTRY.templates()


def match_template(model_name: str) -> tuple[ConversationTemplate, str | None]:
    return DEFAULT_REGISTRY.match(model_name)
