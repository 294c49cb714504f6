"""`corral templates ...`, driven in-process through argparse."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pytest

from conv_templates import get_template, list_templates
from conv_templates.cli import add_subparser

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Hi!"},
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corral")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    return parser


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = _parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def _messages_file(tmp_path: Path, content: object) -> str:
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["templates", "list"], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [t.name for t in list_templates()]
    assert any(line.startswith("llama-2-chat") and "meta-llama" in line for line in lines)


def test_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["templates", "show", "vicuna_v1.1"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out) == get_template("vicuna_v1.1").describe()


def test_show_unknown_template(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["templates", "show", "vicuna"], capsys)
    assert (code, out) == (2, "")
    assert "unknown conversation template 'vicuna'" in err and "vicuna_v1.1" in err


def test_render_prints_the_prompt_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _messages_file(tmp_path, MESSAGES)
    code, out, err = run(["templates", "render", "llama-2-chat", "--messages", path], capsys)
    assert (code, err) == (0, "")
    assert out == "[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nHi! [/INST]"


def test_render_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(MESSAGES)))
    code, out, _ = run(["templates", "render", "chatml", "--messages", "-"], capsys)
    assert code == 0
    assert out == get_template("chatml").render(MESSAGES)


def test_render_without_generation_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _messages_file(tmp_path, MESSAGES)
    argv = ["templates", "render", "chatml", "--messages", path, "--no-generation-prompt"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert out == "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n" + (
        "<|im_start|>user\nHi!<|im_end|>\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json {", "are not valid JSON"),
        ({"role": "user", "content": "Hi!"}, "must be a JSON list of messages"),
        ([], "messages must not be empty"),
        ([{"role": "robot", "content": "Hi!"}], "messages[0].role must be"),
        ([{"role": "user", "content": 3}], "messages[0].content must be a string"),
    ],
)
def test_render_bad_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, message: str
) -> None:
    path = tmp_path / "messages.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    code, out, err = run(["templates", "render", "raw", "--messages", str(path)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("corral templates: ") and message in err


def test_render_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.json")
    code, out, err = run(["templates", "render", "raw", "--messages", missing], capsys)
    assert (code, out) == (2, "")
    assert "cannot read messages" in err


def test_render_unknown_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _messages_file(tmp_path, MESSAGES)
    code, _, err = run(["templates", "render", "nope", "--messages", path], capsys)
    assert code == 2 and "unknown conversation template 'nope'" in err


def test_match_names_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["templates", "match", "hfl/chinese-alpaca-2-7b"], capsys)
    assert (code, err) == (0, "")
    assert out == "chinese-alpaca-2\t(rule 'chinese-alpaca-2')\n"


def test_match_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["templates", "match", "acme/mystery-7b"], capsys)
    assert code == 0
    assert out == "raw\t(no rule matched; falling back to 'raw')\n"


def test_match_empty_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["templates", "match", " "], capsys)
    assert (code, out) == (2, "")
    assert "MODEL_NAME must not be empty" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["templates"],
        ["templates", "show"],
        ["templates", "render", "raw"],
        ["templates", "bogus"],
    ],
)
def test_argument_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err
