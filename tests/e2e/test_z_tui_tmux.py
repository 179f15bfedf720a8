"""The terminal UI driven through tmux as a person would: keys in (`send-keys`), the screen read back
(`capture-pane`). From nothing: install the platform from the overview screen, create a workbench and
open its URL, upload a model into MinIO, deploy it, try an inference, upload a compiled pipeline, run
it with a parameter and watch it finish (each task a pod on the cluster), read a task's log, browse
storage.

Named `test_z_*`: it makes its own cluster (own name, ports and data directory) with the UI's Install,
so it runs after `test_y_cluster.py` has removed the session's cluster, and removes its own at the end.
Needs tmux (`.ci/run` installs it), and the task Python (`.venv-kfp`) to compile the pipeline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import onnx_models
from tests.e2e.conftest import UP_TIMEOUT, free_port

pytestmark = pytest.mark.e2e

CLUSTER = os.environ.get("ODH_E2E_TUI_CLUSTER", "odh-e2e-tui")
PIPELINE_SOURCES = Path(__file__).parents[1] / "integration" / "tui" / "pipelines"  # tui_demo.py
WIDTH, HEIGHT = 200, 50  # wide enough that a workbench URL with its token fits on one line


@dataclass
class Tmux:
    session: str
    env: dict[str, str]

    def keys(self, *keys: str, pause: float = 0.3) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.session, key], check=True, timeout=10)
            time.sleep(pause)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, "-l", text], check=True, timeout=10)
        time.sleep(0.3)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True, text=True,
                              check=False, timeout=10).stdout  # fmt: skip

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first match of `pattern` on the screen, polled until `timeout`; fails with the screen."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.screen())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear within {timeout} s; the screen:\n{self.screen()}")
            time.sleep(1)

    def jump(self, screen: str) -> None:
        """`:` and a screen's name, as k9s; esc first leaves a text field (where `:` would be typed)."""
        self.keys("Escape", ":")
        self.type(screen)
        self.keys("Enter")


@pytest.fixture(scope="module")
def tui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (apt-get install tmux; .ci/run does it)")
    home = tmp_path_factory.mktemp("tui")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODH_APPLIANCE_")}
    env |= {"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            "ODH_APPLIANCE_CLUSTER_NAME": CLUSTER, "ODH_APPLIANCE_PORTS__HTTP": str(free_port()),
            "ODH_APPLIANCE_PORTS__GRPC": str(free_port()), "TERM": "xterm-256color"}  # fmt: skip
    session = f"odh-tui-{os.getpid()}"
    exports = [f"-e{key}={value}" for key, value in env.items() if key.startswith(("XDG_", "ODH_", "TERM"))]
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), *exports,
                    f"{sys.executable} -m appliance tui"], check=True, timeout=30, env=env)  # fmt: skip
    try:
        yield Tmux(session, env)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, timeout=30)
        subprocess.run([sys.executable, "-m", "appliance", "down"], env=env, capture_output=True, check=False,
                       timeout=600)  # fmt: skip


def test_install_from_the_overview(tui: Tmux) -> None:
    tui.wait_for(r"Install it below", timeout=60)
    tui.wait_for(r"doctor: \d+ passed", timeout=60)
    tui.keys("i")
    tui.wait_for(r"installing: each step below", timeout=30)
    tui.wait_for(r"kind create cluster", timeout=300)
    tui.wait_for(r"DataScienceCluster Ready", timeout=UP_TIMEOUT)
    tui.wait_for(r"MinIO console", timeout=60)  # the endpoints table


def test_create_and_open_a_workbench(tui: Tmux) -> None:
    tui.jump("workbenches")
    tui.wait_for(r"Workbenches", timeout=30)
    tui.keys("n")
    tui.wait_for(r"New workbench", timeout=30)
    tui.keys("Enter")  # project: the default
    tui.type("tmux-wb")
    tui.keys("Enter", "Enter", "Tab", "Enter")  # name, image (default), size (default), GPUs 0 → Create
    tui.wait_for(r"tmux-wb\s.*Running", timeout=300)
    tui.keys("o")
    found = tui.wait_for(r"(http://127\.0\.0\.1:\d+/notebook/[^/\s]+/tmux-wb/)\S*\?token=([0-9a-f]+)", timeout=60)
    api_url = f"{found.group(1)}api/status?token={found.group(2)}"
    with urllib.request.urlopen(api_url, timeout=30) as resp:
        assert resp.status == 200 and b"last_activity" in resp.read()
    tui.keys("Escape")


def test_upload_deploy_and_try_a_model(tui: Tmux, tmp_path: Path) -> None:
    model = onnx_models.four_in_three_out(tmp_path / "tmuxfour.onnx")
    tui.jump("models")
    tui.wait_for(r"MinIO models", timeout=30)
    tui.keys("u")
    tui.wait_for(r"Upload a model into MinIO", timeout=30)
    tui.type(str(model))
    tui.keys("Enter", "Enter")
    tui.wait_for(r"tmuxfour", timeout=60)
    # Select it in the MinIO list and deploy it.
    tui.wait_for(r"MinIO models", timeout=30)
    tui.keys("Tab", "Tab")
    tui.keys("p")
    tui.wait_for(r"Deploy s3://", timeout=30)
    tui.keys("Enter", "Enter")
    # Ready, the screen connects through the gateway with the model's token and lists it as served.
    tui.wait_for(r"/serving/\S+/tmuxfour", timeout=300)
    tui.wait_for(r"tmuxfour\s+READY", timeout=120)
    tui.wait_for(r"a: FP32 \[\?, 4\]", timeout=60)  # the try-it form, built from the model's metadata
    tui.keys("Enter")  # pick the model in the served list: the cursor goes to its first field
    time.sleep(2)
    for _ in "abcd":
        tui.type("1, 2, 3, 4")
        tui.keys("Enter")  # the next field; in the last one, send
    tui.wait_for(r"sum FP32 \[1, 4\] = 2, 4, 6, 8", timeout=60)  # a + b, computed in the cluster
    tui.wait_for(r"product FP32 \[1, 4\] = 1, 4, 9, 16", timeout=10)  # c * d
    # Request rate and latency of the deployed model, scraped through the gateway with its token.
    tui.wait_for(r"requests/s \d+\.\d\s+errors/s \d+\.\d", timeout=30)
    tui.wait_for(r"mean latency (\d+\.\d+ ms|-)\s+total [1-9]", timeout=30)  # "-": no request in the last 2 s


def compile_demo(out: Path) -> Path:
    """tests/integration/tui/pipelines/tui_demo.py's pipeline, compiled by kfp in the task Python."""
    from appliance.pipelines import local  # noqa: PLC0415 - a test-only shortcut to the finder

    target = out / "tui-demo.yaml"
    script = (
        f"import sys; sys.path.insert(0, {str(PIPELINE_SOURCES)!r})\n"
        f"from kfp import compiler\nimport tui_demo\ncompiler.Compiler().compile(tui_demo.pipeline, {str(target)!r})\n"
    )
    done = subprocess.run([local.find_task_python(), "-W", "ignore", "-c", script], capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target


def test_run_a_pipeline_and_watch_it_finish(tui: Tmux, tmp_path: Path) -> None:
    compiled = compile_demo(tmp_path)
    tui.jump("pipelines")
    tui.wait_for(r"pipelines \(\d+\)", timeout=120)  # the cluster's pipeline server answered
    tui.keys("u")
    tui.wait_for(r"Upload a pipeline", timeout=30)
    tui.type(str(compiled))
    tui.keys("Enter", "Enter", "Enter")  # path, name (from the file), version (v1)
    tui.wait_for(r"✓ uploaded tui-demo v1; parameters: .*rows \(NUMBER_INTEGER\)", timeout=60)
    tui.keys("n")  # the run form of the selected (the only) pipeline
    tui.wait_for(r"rows \(NUMBER_INTEGER, default 3\)", timeout=60)
    tui.keys("Enter", "Enter")  # greeting, loud: their defaults; the cursor is on rows
    tui.keys("BSpace")
    tui.type("4")
    tui.keys("Enter", "Enter", "Enter")  # rows, scale, tags: the last field runs it
    # The run screen: tasks go pending → running → succeeded as their pods run; the run ends succeeded.
    tui.wait_for(r"tui-demo v1\s+✓ succeeded", timeout=600)
    tui.wait_for(r"make-data\s+✓ succeeded", timeout=10)
    tui.wait_for(r"greet\s+✓ succeeded", timeout=10)
    tui.wait_for(r"parameters: .*rows=4", timeout=10)
    tui.keys("Down", "l")  # the greet task's log: it got rows from make-data
    tui.wait_for(r"hello x4 scale=0\.5 tags=a,b", timeout=60)
    tui.keys("Escape")
    tui.wait_for(r"report\s+Markdown", timeout=30)  # the run's artifacts
    tui.keys("Escape")  # back to the list: the run is there, succeeded
    tui.wait_for(r"tui-demo-\S+\s+✓ succeeded", timeout=30)


def test_browse_storage(tui: Tmux) -> None:
    tui.jump("storage")
    tui.wait_for(r"pipelines", timeout=60)  # the default buckets
    tui.wait_for(r"models", timeout=10)
    tui.keys("Enter")  # open the selected bucket: its objects on the right
    tui.wait_for(r"\(\d+ objects\)", timeout=60)
