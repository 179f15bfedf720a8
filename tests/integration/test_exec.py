"""The exec helper with real processes: output, failures, timeouts, streaming."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from appliance import exec as exec_mod

pytestmark = pytest.mark.integration


def test_success_captures_output() -> None:
    result = exec_mod.run(["sh", "-c", "echo out; echo err >&2"])
    assert result.ok
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.argv == ("sh", "-c", "echo out; echo err >&2")


def test_failure_carries_argv_code_and_output_tail() -> None:
    with pytest.raises(exec_mod.ExecError) as info:
        exec_mod.run(["sh", "-c", "for i in $(seq 1 40); do echo line $i; done; echo bad >&2; exit 3"], hint="h")
    exc = info.value
    assert exc.returncode == 3
    assert exc.argv[0] == "sh"
    assert exc.hint == "h"
    assert "exit code 3" in exc.message
    assert exc.output_tail.splitlines()[-1] == "bad"
    assert len(exc.output_tail.splitlines()) == exec_mod.TAIL_LINES
    assert any(line.startswith("command: sh -c") for line in exc.details())


def test_check_false_returns_result() -> None:
    assert exec_mod.run(["false"], check=False).returncode == 1


def test_missing_program() -> None:
    with pytest.raises(exec_mod.ExecError, match="command not found") as info:
        exec_mod.run(["definitely-not-a-program-odh"])
    assert info.value.returncode is None
    assert info.value.hint


@pytest.mark.parametrize("stream", [False, True])
def test_timeout_kills_the_process_group(stream: bool) -> None:
    started = time.monotonic()
    lines: list[str] = []
    with pytest.raises(exec_mod.ExecError, match="did not finish within 0.5s") as info:
        exec_mod.run(
            ["sh", "-c", "echo started; sleep 30 & sleep 30"],
            timeout=0.5,
            on_line=lines.append if stream else None,
        )
    assert time.monotonic() - started < 15
    assert "started" in info.value.output


def test_streaming_lines_and_env_and_input() -> None:
    lines: list[str] = []
    result = exec_mod.run(
        ["sh", "-c", 'cat; echo "$ODH_TEST_VALUE"; echo to-stderr >&2'],
        env={"ODH_TEST_VALUE": "v1"},
        input="from-stdin\n",
        on_line=lines.append,
    )
    assert lines == ["from-stdin", "v1", "to-stderr"]
    assert result.stdout.splitlines() == lines


def test_which_prefers_extra_dirs(tmp_path: Path) -> None:
    assert exec_mod.which("definitely-not-a-program-odh") is None
    own = tmp_path / "sh"
    own.write_text("#!/bin/sh\n")
    assert exec_mod.which("sh", [str(tmp_path)]) != str(own)  # not executable: skipped
    own.chmod(0o755)
    assert exec_mod.which("sh", [str(tmp_path)]) == str(own)
    assert exec_mod.which("sh") != str(own)


def test_interrupt_stops_the_child() -> None:
    """Ctrl-C in the appliance must not leave the command running (it has its own session)."""
    marker = f"odh-exec-interrupt-{time.monotonic_ns()}"
    timer = threading.Timer(0.5, lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            exec_mod.run(["bash", "-c", f"exec -a {marker} sleep 30"], timeout=20)
    finally:
        timer.cancel()
    time.sleep(0.2)
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).startswith(marker)]
    assert alive == []


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
