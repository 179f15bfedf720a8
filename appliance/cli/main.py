"""The `appliance` command: global options, subcommands, and the one place where errors end the run.

Each subcommand appears only once it works. Topic commands live in their own modules
(`appliance.cli.<topic>`) and are registered at the bottom of this file. Commands call `appliance.api`
and render the result; errors propagate to `main`, which prints expected failures as `error:`/`hint:` and bugs with a
traceback (`appliance.cli.report`).
"""

from __future__ import annotations

import json
import sys

import click

from appliance import api, errors
from appliance.cli import bundle as bundle_cli
from appliance.cli import cluster as cluster_cli
from appliance.cli import images as images_cli
from appliance.cli import pipelines as pipelines_cli
from appliance.cli import render, report, serve
from appliance.cli import tui as tui_cli
from appliance.cli.state import State, pass_state


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, invoke_without_command=True
)
@click.option("-v", "--verbose", count=True, help="Show more detail (commands run, their output, causes).")
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    envvar="ODH_APPLIANCE_CONFIG",
    help="Configuration file [default: $XDG_CONFIG_HOME/odh-appliance/config.yaml].",
)
@click.option(
    "--set",
    "overrides",
    metavar="KEY=VALUE",
    multiple=True,
    help="Override one setting, e.g. --set ports.http=9080 (beats file and environment).",
)
@click.version_option(api.version_info()["odh-appliance"], "--version", prog_name="odh-appliance")
@click.pass_context
def cli(ctx: click.Context, verbose: int, config_file: str | None, overrides: tuple[str, ...]) -> None:
    """odh-appliance: Open Data Hub / OpenShift AI on one machine.

    Settings come from the config file, then ODH_APPLIANCE_* environment variables
    (ODH_APPLIANCE_PORTS__HTTP=9080), then flags; later ones win. Without a command, in an
    interactive terminal, it opens the terminal UI (`appliance tui`).
    """
    state = ctx.ensure_object(State)
    state.verbose = verbose
    state.config_file = config_file
    state.overrides = list(overrides)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            tui_cli.run_tui(state)
        click.echo(ctx.get_help())
        ctx.exit(2)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_state
def version(state: State, as_json: bool) -> None:
    """Show the odh-appliance version and the Python it runs on."""
    info = api.version_info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    state.out.print(f"odh-appliance {info['odh-appliance']}", highlight=False)
    if state.verbose:
        for key, value in info.items():
            if key != "odh-appliance":
                state.out.print(f"  {key}: {value}", highlight=False)
    else:
        state.out.print(f"  Python {info['python']} on {info['platform']}", highlight=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (for scripts and the TUI).")
@pass_state
def doctor(state: State, as_json: bool) -> None:
    """Check that this host can run the appliance.

    Checks Python, the Docker engine, cgroups, capabilities, CPU, memory, disk, inotify limits, the
    ports the appliance binds, kind, the GPU and whether a container registry is reachable. Each
    warning or failure comes with a hint. Exits non-zero when a check fails.
    """
    loaded = state.load_config()
    report_ = api.doctor(loaded)
    if as_json:
        click.echo(json.dumps(report_.as_dict(), indent=2))
    else:
        state.out.print(render.doctor_table(report_))
        state.out.print(render.doctor_summary(report_))
    report_.raise_for_failures()


@cli.group()
def config() -> None:
    """Show the effective configuration and where it comes from."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print config, sources and paths as JSON.")
@click.option("--sources", is_flag=True, help="Also list where each non-default setting came from.")
@pass_state
def config_show(state: State, as_json: bool, sources: bool) -> None:
    """Print the effective configuration as YAML (what config.yaml would say)."""
    loaded = state.load_config()
    data = api.config_as_dict(loaded)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    paths = data["paths"]
    file_note = data["file"] or f"{paths['config_file']} (not present; defaults apply)"
    click.echo(f"# config file: {file_note}")
    click.echo(f"# data: {paths['data_dir']}  cache: {paths['cache_dir']}")
    click.echo(api.config_as_yaml(loaded), nl=False)
    if sources:
        state.out.print(render.sources_table(data))


# Topic command modules register here, one line each: cli.add_command(<module>.<group>)
cli.add_command(images_cli.images)
cli.add_command(bundle_cli.bundle)
cli.add_command(serve.serve)
cli.add_command(cluster_cli.up)
cli.add_command(cluster_cli.down)
cli.add_command(cluster_cli.status)
cli.add_command(cluster_cli.credentials)
cli.add_command(tui_cli.tui)
cli.add_command(pipelines_cli.pipelines)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI and turn its outcome into an exit code."""
    state = State()
    try:
        result = cli.main(args=argv, prog_name="appliance", standalone_mode=False, obj=state)
        code = result if isinstance(result, int) else 0
    except errors.ApplianceError as exc:
        code = report.error(state.err, exc, state.verbose)
    except click.exceptions.Abort:
        state.err.print("aborted")
        code = report.INTERRUPTED_EXIT_CODE
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except KeyboardInterrupt:
        state.err.print("interrupted")
        code = report.INTERRUPTED_EXIT_CODE
    except Exception as exc:
        code = report.bug(state.err, exc)
    sys.exit(code)
