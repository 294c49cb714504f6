"""`corral webui` refuses to start, with one clear line and status 2, when the arena cannot work."""

from __future__ import annotations

import argparse

import pytest

from webui.cli import add_arguments, run


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="corral webui")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_all_zero_weights_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--arena-weight", "m1=0", "--arena-weight", "m2=0", "--log-level", "error")
    assert run(args) == 2
    assert "every arena weight is 0" in capsys.readouterr().err


def test_unreachable_gateway_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("--api-url", "http://127.0.0.1:1/v1", "--startup-timeout", "0")
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("corral webui: cannot list models at http://127.0.0.1:1/v1")


def test_weight_flags_parse_into_a_table() -> None:
    args = parse("--arena-weight", "org/model=2.5", "--arena-weight", "b=0")
    assert args.arena_weights == [("org/model", 2.5), ("b", 0.0)]
    with pytest.raises(SystemExit):
        parse("--arena-weight", "no-equals-sign")
