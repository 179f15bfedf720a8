"""The app shell: `:` jumps (names, aliases, prefixes), `?` help, `esc` back through dialogs, the
filter and the screens visited, the lost-cluster banner and recovery, and `appliance` opening the
UI in a real terminal (a pty) and quitting with ctrl+q."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from appliance import api
from tests.integration.conftest import closed_port
from tests.integration.tui.conftest import drive, make_app, notes, screen_text, type_text, until
from tui import app as tui_app
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import JumpDialog
from tui.screens.help import HelpScreen
from tui.widgets.banner import Banner

pytestmark = pytest.mark.integration


async def jump(pilot: Pilot[None], word: str) -> None:
    await pilot.press("colon")
    await until(pilot, lambda: isinstance(pilot.app.screen, JumpDialog), "the jump prompt")
    await type_text(pilot, word)
    await pilot.press("enter")
    await pilot.pause()


def test_jump_help_and_back() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert app.current_mode == "storage"
        await jump(pilot, "nb")  # an alias
        assert app.current_mode == "workbenches"
        await jump(pilot, "mod")  # a prefix
        assert app.current_mode == "models"
        await jump(pilot, "nothing")
        assert app.current_mode == "models"
        await until(pilot, lambda: any("no screen 'nothing'" in n for n in notes(app)), "the warning")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        text = screen_text(app)
        assert "jump to a screen" in text and "on Models" in text and "serve a local .onnx" in text
        await pilot.press("escape")
        assert app.current_mode == "models" and not isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.current_mode == "workbenches"
        await pilot.press("escape")
        assert app.current_mode == "storage"

    drive(make_app(initial="storage", model_server="http://127.0.0.1:9"), scenario)


def test_lost_cluster_banner_and_recovery() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        app = pilot.app
        banner = app.screen.query_one("#banner", Banner)
        app.cluster_answered("no cluster 'odh'")  # never seen up: no banner, the overview says so
        assert not banner.shown
        app.cluster_answered(None)
        app.cluster_answered("the Kubernetes API server does not answer (ConnectionRefusedError)")
        await pilot.pause()
        assert banner.shown
        assert "CLUSTER LOST: the Kubernetes API server does not answer" in screen_text(app)
        await jump(pilot, "storage")  # every screen shows it
        assert app.screen.query_one("#banner", Banner).shown
        app.cluster_answered(None)
        await pilot.pause()
        assert not app.screen.query_one("#banner", Banner).shown
        await until(pilot, lambda: "the cluster answers again" in notes(app), "the notification")

    drive(make_app(initial="workbenches"), scenario)


def test_watch_polls_the_real_api_and_shows_no_banner_without_a_cluster() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.pause(0.5)
        await pilot.app.workers.wait_for_complete()  # the watch asked for real (and crashed nothing)
        await pilot.pause()
        assert not pilot.app.cluster_known_up
        assert not pilot.app.screen.query_one("#banner", Banner).shown

    drive(make_app(initial="storage", watch_cluster=True, storage=None), scenario)


def test_workbenches_without_a_cluster_say_what_to_do() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: "No cluster answers yet" in screen_text(pilot.app), "the hint")
        await pilot.press("n")
        await pilot.pause()
        dialog = pilot.app.screen
        dialog.query_one("#field-name", Input).value = "Not_A_Name"
        dialog.query_one("#field-gpu", Input).focus()
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: any("'Not_A_Name' is not a valid workbench name" in n for n in notes(pilot.app)),
                    "the validation error")  # fmt: skip
        assert isinstance(pilot.app.screen, ResourceScreen)

    drive(make_app(initial="workbenches"), scenario)


def test_plain_appliance_in_a_terminal_opens_the_ui(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: `appliance --set cluster_name=ptytest` on the pty
        os.execve(sys.executable, [sys.executable, "-m", "appliance", "--set", "cluster_name=ptytest"], env)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Overview" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        assert b"Overview" in seen, seen[-2000:]
        os.write(fd, b"\x11")  # ctrl+q
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            select.select([fd], [], [], 0.2)
            with contextlib.suppress(OSError):
                os.read(fd, 65536)
        assert status is not None and os.waitstatus_to_exitcode(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_appliance_tui_in_a_pipe_is_an_error_with_a_hint(cli_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "appliance", "tui"], env=cli_env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "error: the terminal UI needs an interactive terminal" in proc.stderr
    assert "Traceback" not in proc.stderr


class _Version(http.server.BaseHTTPRequestHandler):
    """Answers /version as an API server does (a stand-in: a real kube-apiserver needs etcd and more)."""

    def do_GET(self) -> None:
        version = {"major": "1", "minor": "34", "gitVersion": "v1.34.1", "gitCommit": "0", "gitTreeState": "clean",
                   "buildDate": "2025-09-09T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
                   "platform": "linux/amd64"}  # fmt: skip
        body = json.dumps(version).encode()
        self.send_response(200 if self.path.startswith("/version") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _ApiServer:
    def __init__(self, port: int) -> None:
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Version)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_banner_follows_the_api_server_going_away_and_coming_back(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    loaded = api.load_config()
    kubeconfig = loaded.paths.data_dir / "clusters" / "odh" / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True)
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
"""
    )
    monkeypatch.setattr(tui_app, "WATCH_INTERVAL", 0.3)
    server = _ApiServer(port)

    async def scenario(pilot: Pilot[None]) -> None:
        nonlocal server
        app = pilot.app
        await until(pilot, lambda: app.cluster_known_up, "the API server to answer")
        assert not app.screen.query_one("#banner", Banner).shown
        server.stop()
        lost = "CLUSTER LOST: the Kubernetes API server does not answer"
        await until(pilot, lambda: lost in screen_text(app), "the banner")
        server = _ApiServer(port)
        await until(pilot, lambda: not app.screen.query_one("#banner", Banner).shown, "the recovery")
        await until(pilot, lambda: "the cluster answers again" in notes(app), "the notification")

    try:
        drive(make_app(initial="storage", watch_cluster=True), scenario)
    finally:
        server.stop()


def test_colon_q_quits() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await jump(pilot, "q")
        await until(pilot, lambda: not pilot.app.is_running, "the app to exit")

    drive(make_app(initial="storage", model_server="http://127.0.0.1:9"), scenario)
