"""How the CLI ends: expected failures as `error:`/`hint:` lines, bugs with their traceback.

Modelled on tox's report: an `ApplianceError` is something the user can act on, so it gets one
clear line and a hint, and `-v` adds its details (the command that ran and what it printed, the
cause). Anything else is a bug in odh-appliance and always shows the full traceback.
"""

from __future__ import annotations

import traceback

from rich.console import Console
from rich.text import Text

from appliance import errors

BUG_EXIT_CODE = 70  # EX_SOFTWARE
INTERRUPTED_EXIT_CODE = 130


def error(console: Console, exc: errors.ApplianceError, verbose: int) -> int:
    console.print(Text("error: ", style="bold red") + Text(exc.message), soft_wrap=True)
    if exc.hint:
        console.print(Text("hint: ", style="bold yellow") + Text(exc.hint), soft_wrap=True)
    if verbose:
        for line in exc.details():
            console.print(Text(line, style="dim"), soft_wrap=True)
        cause = exc.__cause__ or exc.__context__
        while cause is not None:
            console.print(Text(f"caused by: {type(cause).__name__}: {cause}", style="dim"))
            cause = cause.__cause__ or cause.__context__
    elif exc.details():
        console.print(Text("(run with -v for details)", style="dim"))
    return exc.exit_code


def bug(console: Console, exc: BaseException) -> int:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    console.print(Text("".join(lines).rstrip()), soft_wrap=True)
    console.print(
        Text("bug: ", style="bold red")
        + Text(f"odh-appliance failed unexpectedly ({type(exc).__name__}); please report it with the output above")
    )
    return BUG_EXIT_CODE
