"""`appliance tui` (and plain `appliance` in an interactive terminal): start the terminal UI.

The UI lives in the sibling package `tui`, which imports `appliance.api`; `appliance` never imports
Textual (an import-linter contract), and importing `tui` from here would also make a cycle. So the
command replaces this process with `python -m tui`, passing the global options on: the CLI stays
headless (a script or a container without a terminal never loads Textual), and the UI gets the same
configuration. `appliance-tui` is the same program as its own console script.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import click

from appliance import errors
from appliance.cli.state import State, pass_state


def tui_argv(
    state: State, *, screen: str | None = None, model_server: str | None = None, pipeline_server: str | None = None
) -> list[str]:
    """The command line of the UI process, with this CLI's global options."""
    argv = [sys.executable, "-m", "tui"]
    if state.config_file:
        argv += ["--config", state.config_file]
    for item in state.overrides:
        argv += ["--set", item]
    if screen:
        argv += ["--screen", screen]
    if model_server:
        argv += ["--model-server", model_server]
    if pipeline_server:
        argv += ["--pipeline-server", pipeline_server]
    return argv


def run_tui(state: State, **options: str | None) -> None:
    """Exec the UI (does not return)."""
    for module in ("tui", "textual"):
        if importlib.util.find_spec(module) is None:
            raise errors.ApplianceError(
                f"the terminal UI is not installed (no {module!r} module in {sys.executable})",
                hint="reinstall odh-appliance with its dependencies: pip install -e . (or make venv)",
            )
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise errors.UsageError(
            "the terminal UI needs an interactive terminal", hint="run it in a terminal, not a pipe"
        )
    argv = tui_argv(state, **options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


@click.command()
@click.option(
    "--screen", metavar="NAME", help="Open this screen first: overview, workbenches, models, pipelines, storage."
)
@click.option("--model-server", metavar="URL", help="Connect the models screen to this model server.")
@click.option(
    "--pipeline-server",
    metavar="URL",
    help="Use this pipeline server instead of the cluster's (its token from ODH_PIPELINES_TOKEN).",
)
@pass_state
def tui(state: State, screen: str | None, model_server: str | None, pipeline_server: str | None) -> None:
    """Open the terminal UI: install, overview, workbenches, models, pipelines, storage (see docs/tui.md).

    Plain `appliance` in an interactive terminal does the same. Keys as in k9s: `:` jumps to a
    screen, `/` filters, `?` shows help, `esc` goes back.
    """
    run_tui(state, screen=screen, model_server=model_server, pipeline_server=pipeline_server)
