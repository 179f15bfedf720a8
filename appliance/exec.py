"""The one way the appliance runs external programs (docker, kind, go, debootstrap, kubectl, ...).

Every call has a timeout; a failure raises `ExecError`, which carries the argv, the exit code and the
tail of the output so that the user sees what ran and what it said. Long-running commands can stream
their output line by line to a callback (the progress layer uses that to show what a build does).
"""

from __future__ import annotations

import collections
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from appliance import errors

TAIL_LINES = 20
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class ExecError(errors.ApplianceError):
    """An external command failed, timed out or could not be started."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None,
        output: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.output = output

    @property
    def output_tail(self) -> str:
        return tail(self.output)

    def details(self) -> list[str]:
        lines = [f"command: {shlex.join(self.argv)}", f"exit code: {self.returncode}"]
        if self.output.strip():
            lines.append(f"last {TAIL_LINES} lines of output:")
            lines.extend("  " + line for line in self.output_tail.splitlines())
        return lines


def which(program: str, extra_dirs: Sequence[str] = ()) -> str | None:
    """Find `program` on PATH or in `extra_dirs` (the appliance's own bin directory, for example)."""
    for directory in extra_dirs:
        candidate = os.path.join(directory, program)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return shutil.which(program)


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input: str | None = None,
    on_line: Callable[[str], None] | None = None,
    hint: str | None = None,
) -> Result:
    """Run `argv` and wait for it, at most `timeout` seconds.

    `env` entries are added to the current environment. With `on_line`, each line of combined
    output is passed to it as it arrives (stdout and stderr are then merged into `stdout`). With
    `check` (the default) a non-zero exit raises `ExecError`; a missing program or a timeout always
    raise.
    """
    argv = tuple(str(a) for a in argv)
    if not argv:
        raise ValueError("exec.run needs a command")
    full_env = {**os.environ, **env} if env is not None else None
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if on_line else subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ExecError(
            f"{argv[0]}: command not found",
            argv=argv,
            returncode=None,
            hint=hint or f"install {os.path.basename(argv[0])} or put it on PATH",
        ) from exc
    except PermissionError as exc:
        raise ExecError(f"{argv[0]}: permission denied", argv=argv, returncode=None, hint=hint) from exc

    if on_line is None:
        try:
            stdout, stderr = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            stdout, stderr = _kill(proc)
            raise _timeout_error(argv, timeout, stdout + stderr, hint) from None
        except BaseException:  # Ctrl-C: the child runs in its own session, so stop it ourselves
            _kill(proc)
            raise
    else:
        stdout, stderr = _stream(proc, input, timeout, on_line, argv, hint), ""

    result = Result(argv, proc.returncode, stdout, stderr, time.monotonic() - started)
    if check and not result.ok:
        raise ExecError(
            f"{os.path.basename(argv[0])} failed with exit code {proc.returncode}",
            argv=argv,
            returncode=proc.returncode,
            output=(stdout + ("\n" if stdout and stderr else "") + stderr),
            hint=hint,
        )
    return result


def _stream(
    proc: subprocess.Popen[str],
    input: str | None,
    timeout: float,
    on_line: Callable[[str], None],
    argv: tuple[str, ...],
    hint: str | None,
) -> str:
    lines: list[str] = []
    assert proc.stdout is not None

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if input is not None and proc.stdin is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        reader.join(timeout=5)
        raise _timeout_error(argv, timeout, "\n".join(lines), hint) from None
    except BaseException:
        _kill(proc)
        raise
    reader.join(timeout=5)
    return "\n".join(lines) + ("\n" if lines else "")


def _kill(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop the whole process group of a command that ran too long; return what it printed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            out, err = proc.communicate(timeout=5)
            return out or "", err or ""
        except subprocess.TimeoutExpired:
            continue
        except ValueError:  # streams already consumed by a reader thread
            proc.wait(timeout=5)
            return "", ""
    return "", ""


def _timeout_error(argv: tuple[str, ...], timeout: float, output: str, hint: str | None) -> ExecError:
    return ExecError(
        f"{os.path.basename(argv[0])} did not finish within {timeout:g}s and was stopped",
        argv=argv,
        returncode=None,
        output=output,
        hint=hint or "it may be waiting on something unavailable; rerun with -v to see its output",
    )


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of `text` (for messages that quote output)."""
    return "\n".join(collections.deque(text.rstrip().splitlines(), maxlen=lines))
