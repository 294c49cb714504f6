"""`corral templates ...`: list, show, render and match conversation templates.

`add_subparser(subparsers)` adds the `templates` command to an argparse parser; each
sub-command sets `func`, which takes the parsed arguments and returns the exit code: 0 on
success, 2 with a message on stderr for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .base import TemplateError
from .registry import DEFAULT_REGISTRY, list_templates, match_template

USAGE_ERROR = 2


def add_subparser(subparsers: Any) -> None:
    """Add `templates` with sub-commands list, show, render and match."""
    parser = subparsers.add_parser(
        "templates",
        help="list, show, render and match conversation templates",
        description="Conversation templates: how each model family's prompt is formatted.",
    )
    commands = parser.add_subparsers(dest="templates_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list templates with their sources")
    listing.set_defaults(func=_list)

    show = commands.add_parser("show", help="show one template as JSON")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(func=_show)

    render = commands.add_parser("render", help="print the prompt a template makes of messages")
    render.add_argument("name", metavar="NAME")
    render.add_argument(
        "--messages",
        required=True,
        metavar="FILE",
        help="JSON file holding a list of {role, content} messages, or - for standard input",
    )
    render.add_argument(
        "--no-generation-prompt",
        dest="add_generation_prompt",
        action="store_false",
        help="do not open the assistant's turn after a final user message",
    )
    render.set_defaults(func=_render)

    match = commands.add_parser("match", help="which template a model name or path gets")
    match.add_argument("model_name", metavar="MODEL_NAME")
    match.set_defaults(func=_match)


def _fail(message: str) -> int:
    print(f"corral templates: {message}", file=sys.stderr)
    return USAGE_ERROR


def _list(args: argparse.Namespace) -> int:
    templates = list_templates()
    width = max(len(template.name) for template in templates)
    for template in templates:
        print(f"{template.name:<{width}}  {template.source}")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        template = DEFAULT_REGISTRY.get(args.name)
    except TemplateError as exc:
        return _fail(str(exc))
    print(json.dumps(template.describe(), indent=2, ensure_ascii=False))
    return 0


def _read_messages(path: str) -> Any:
    if path == "-":
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _render(args: argparse.Namespace) -> int:
    try:
        template = DEFAULT_REGISTRY.get(args.name)
    except TemplateError as exc:
        return _fail(str(exc))
    try:
        messages = _read_messages(args.messages)
    except OSError as exc:
        return _fail(f"cannot read messages from {args.messages!r}: {exc.strerror or exc}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _fail(f"messages in {args.messages!r} are not valid JSON: {exc}")
    if not isinstance(messages, list):
        return _fail(f"messages in {args.messages!r} must be a JSON list of messages")
    try:
        prompt = template.render(messages, add_generation_prompt=args.add_generation_prompt)
    except TemplateError as exc:
        return _fail(str(exc))
    sys.stdout.write(prompt)
    sys.stdout.flush()
    return 0


def _match(args: argparse.Namespace) -> int:
    if not args.model_name.strip():
        return _fail("MODEL_NAME must not be empty")
    template, rule = match_template(args.model_name)
    if rule is None:
        print(f"{template.name}\t(no rule matched; falling back to {template.name!r})")
    else:
        print(f"{template.name}\t(rule {rule!r})")
    return 0
