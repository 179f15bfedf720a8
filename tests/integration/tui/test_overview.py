"""The overview/install screen with no cluster: the real `doctor` results as words, the install
form (profile → components, GPU, bundle → configuration flags), a real `api.up` that fails at once
(the `kubeconfig` provider pointed at a closed port creates nothing) with the same steps, error and
hint as `appliance up`, and the progress widget fed by a real Progress stream from a worker thread,
rendering the same lines as the CLI's renderer from the same events."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Select

from appliance import api, progress
from appliance.cli import render
from tests.integration.conftest import RunCli, closed_port
from tests.integration.tui.conftest import drive, make_app, notes, screen_text, until
from tui.screens.overview import OverviewScreen
from tui.widgets.resource_table import ResourceTable
from tui.widgets.steps import StepList, step_line

pytestmark = pytest.mark.integration

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:PORT"}}]
users: [{name: gone, user: {token: nothing}}]
contexts: [{name: gone, context: {cluster: gone, user: gone}}]
current-context: gone
"""


def overview(pilot: Pilot[None]) -> OverviewScreen:
    screen = pilot.app.screen
    assert isinstance(screen, OverviewScreen)
    return screen


def test_no_cluster_shows_doctor_and_the_install_form() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        screen = overview(pilot)
        doctor = screen.query_one("#doctor", ResourceTable)
        await until(pilot, lambda: doctor.row_count > 5, "the doctor results")
        report = api.doctor(api.load_config())
        assert doctor.visible_keys() == [r.name for r in report.results]
        for key, cells in doctor.rows_all:
            assert cells[1] in ("✓ pass", "! warn", "✗ FAIL"), (key, cells)  # words, not colour alone
        assert "No cluster 'odh'" in screen_text(pilot.app)

        screen.query_one("#profile", Select).value = "minimal"
        await pilot.pause()
        components = screen.query_one("#component-list", ResourceTable)
        assert {k for k, cells in components.rows_all if cells[1] == "yes"} == {"workbenches", "kserve"}
        components.select_key("ray")  # enter on a row turns it on or off, shown as a word
        components.focus()
        await pilot.press("enter")
        assert dict(components.rows_all)["ray"] == ("ray", "yes")
        await pilot.press("enter")
        assert dict(components.rows_all)["ray"] == ("ray", "no")
        screen.query_one("#gpu", Select).value = "off"
        screen.query_one("#bundle", Input).value = "/tmp/site.bundle"
        await pilot.pause()
        flags = screen.install_flags()
        assert flags["gpu"] == "off" and flags["bundle"] == "/tmp/site.bundle"
        assert flags["components"] == {name: name in ("workbenches", "kserve") for name in api.DEFAULT_COMPONENTS}
        loaded = api.load_config(flags=flags)  # the form is valid configuration
        assert loaded.config.components["dashboard"] is False

    drive(make_app(), scenario)


def test_install_runs_up_and_shows_the_same_steps_as_the_cli(tmp_path: Path, run_cli: RunCli) -> None:
    kubeconfig = tmp_path / "gone.kubeconfig"
    kubeconfig.write_text(KUBECONFIG.replace("PORT", str(closed_port())))
    overrides = ("provider=kubeconfig", f"kubeconfig={kubeconfig}")

    async def scenario(pilot: Pilot[None]) -> None:
        screen = overview(pilot)
        await until(pilot, lambda: screen.query_one("#install").display, "the install form")
        await pilot.press("i")
        await until(pilot, lambda: any("does not create clusters" in n for n in notes(pilot.app)), "the failure")
        assert "✗ install failed" in screen_text(pilot.app)
        steps = screen.query_one("#steps", StepList)
        tui_lines.extend(step_line(e).plain for _, e in sorted(steps.steps.items()))
        tui_error.extend(next(n for n in notes(pilot.app) if "does not create clusters" in n).splitlines())

    tui_lines: list[str] = []
    tui_error: list[str] = []
    app = make_app()
    app.backends.overrides = overrides
    drive(app, scenario)

    cli = run_cli(*(a for o in overrides for a in ("--set", o)), "up")
    assert cli.returncode != 0
    assert cli.stderr.splitlines()[-2:] == [f"error: {tui_error[0]}", tui_error[1]]  # message and hint
    printed = [line for line in cli.stderr.splitlines() if line[:1] in "✓✗-•"]
    strip = re.compile(r" \(\d+\.\d+s\)")
    assert [strip.sub("", line) for line in printed] == [strip.sub("", line) for line in tui_lines]


def test_step_list_renders_a_real_progress_stream_from_a_thread() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        steps = overview(pilot).query_one("#steps", StepList)
        recorder = progress.Recorder()
        prog = api.Progress(steps.subscriber(), recorder)

        def operation() -> None:
            with prog.step("download the bundle") as step:
                for done in range(0, 5_000_001, 1_000_000):
                    step.update(completed=done, total=5_000_000, unit="B")
            with prog.step("load images") as step:
                step.skip("present")
            try:
                with prog.step("start the node"):
                    raise api.ApplianceError("the node did not start")
            except api.ApplianceError:
                pass

        worker = threading.Thread(target=operation)
        worker.start()
        worker.join(timeout=10)
        await until(pilot, lambda: len(steps.steps) == 3 and steps.failed, "three steps")
        text = screen_text(pilot.app)
        assert re.search(r"✓ download the bundle \(\d+\.\ds\)", text)
        assert re.search(r"- load images \(\d+\.\ds\): present", text)
        assert re.search(r"✗ start the node \(\d+\.\ds\): the node did not start", text)
        # the CLI's printer, fed the same recorded events, prints the same lines
        console = Console(record=True, width=120)
        printer = _cli_printer(console)
        for event in recorder.events:
            printer(event)
        printed = [line for line in console.export_text().splitlines() if line[:1] in "✓✗-"]
        assert printed == [step_line(e).plain for _, e in sorted(steps.steps.items())]

    drive(make_app(), scenario)


def _cli_printer(console: Console) -> progress.Subscriber:
    """The CLI's live renderer (what `appliance up` uses), on a recording console."""
    return render.LiveSteps(console)


def test_install_from_a_bundle_loads_it_first(tmp_path: Path) -> None:
    missing = tmp_path / "site.odhbundle"

    async def scenario(pilot: Pilot[None]) -> None:
        screen = overview(pilot)
        await until(pilot, lambda: screen.query_one("#install").display, "the install form")
        screen.query_one("#bundle", Input).value = str(missing)
        await pilot.press("i")
        await until(pilot, lambda: any("does not exist" in n for n in notes(pilot.app)), "the bundle error")
        assert any("hint: pass the path of a .odhbundle file" in n for n in notes(pilot.app))
        await until(pilot, lambda: f"✗ verify {missing.name}" in screen_text(pilot.app), "the failed step")
        assert screen.query_one("#install").display  # the form is back, to fix the path

    drive(make_app(), scenario)
