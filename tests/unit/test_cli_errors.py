"""How the CLI ends: `error:`/`hint:` for expected failures (more with -v), a traceback for bugs."""

from __future__ import annotations

import pytest
from rich.console import Console

from appliance import api, errors
from appliance import exec as exec_mod
from appliance.cli import main as cli_main
from appliance.cli import report


def render(exc: errors.ApplianceError, verbose: int) -> tuple[str, int]:
    console = Console(record=True, width=200, color_system=None)
    code = report.error(console, exc, verbose)
    return console.export_text(), code


def exec_failure() -> exec_mod.ExecError:
    return exec_mod.ExecError(
        "kind failed with exit code 1",
        argv=["kind", "create", "cluster"],
        returncode=1,
        output="\n".join(f"line {i}" for i in range(50)),
        hint="see the node logs",
    )


def test_error_without_verbose_is_two_lines() -> None:
    text, code = render(errors.UsageError("bad port", hint="use 1-65535"), verbose=0)
    assert text.splitlines() == ["error: bad port", "hint: use 1-65535"]
    assert code == 2


def test_error_without_verbose_mentions_v_when_details_exist() -> None:
    text, code = render(exec_failure(), verbose=0)
    assert text.splitlines() == [
        "error: kind failed with exit code 1",
        "hint: see the node logs",
        "(run with -v for details)",
    ]
    assert code == 1
    assert "line 49" not in text


def test_verbose_adds_command_output_tail_and_cause() -> None:
    exc = exec_failure()
    exc.__cause__ = FileNotFoundError("kubeconfig missing")
    text, _ = render(exc, verbose=1)
    assert "command: kind create cluster" in text
    assert "exit code: 1" in text
    assert "line 49" in text and "line 30" in text
    assert "line 29\n" not in text  # only the tail
    assert "caused by: FileNotFoundError: kubeconfig missing" in text
    assert "Traceback" not in text


def test_main_renders_expected_failure_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(["--set", "gpu=sometimes", "config", "show"])
    captured = capsys.readouterr()
    assert info.value.code == 2
    assert "error: invalid setting gpu" in captured.err
    assert "hint:" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_main_shows_traceback_for_bugs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> dict[str, str]:
        raise KeyError("a bug")

    monkeypatch.setattr(api, "version_info", broken)
    with pytest.raises(SystemExit) as info:
        cli_main.main(["version"])
    captured = capsys.readouterr()
    assert info.value.code == report.BUG_EXIT_CODE
    assert "Traceback (most recent call last)" in captured.err
    assert "KeyError: 'a bug'" in captured.err
    assert "bug: odh-appliance failed unexpectedly" in captured.err


def test_usage_errors_from_click_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(["doctor", "--no-such-flag"])
    assert info.value.code == 2
    assert "No such option" in capsys.readouterr().err


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name, command in cli_main.cli.commands.items():
        assert name in out
        assert command.help, f"subcommand {name} has no help text"
