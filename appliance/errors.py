"""The one error hierarchy of the appliance.

Every expected failure (bad input, a missing tool, an engine that does not answer) is an
`ApplianceError` carrying a one-line message, a hint that says what to do, and an exit code. The
CLI prints those as `error: ...` / `hint: ...` without a traceback; anything that is not an
`ApplianceError` is a bug and is shown with its traceback (see `appliance.cli.report`).
"""

from __future__ import annotations


class ApplianceError(Exception):
    """An expected failure: shown to the user as one line plus a hint, never as a traceback."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def details(self) -> list[str]:
        """Extra lines shown only with `-v` (command output, causes)."""
        return []

    def __str__(self) -> str:
        return self.message


class UsageError(ApplianceError):
    """Bad input from the user: a flag, a config value, a file that does not parse."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration (file, environment or flags) is invalid."""


class CheckFailed(ApplianceError):
    """One or more preflight checks failed."""
