"""TUI fixtures: the app driven by Textual's Pilot against real backends.

Every test gets its own XDG config/data directories (so there is no cluster, and nothing of the
user's is read) and a closed registry port for `doctor`. `drive` runs an async Pilot scenario from a
plain test; `until` waits, bounded, for a condition, because the screens load in thread workers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from appliance import api
from tests.integration.conftest import closed_port
from tui.app import ApplianceApp
from tui.backends import Backends

SIZE = (80, 24)
WAIT = 30.0


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("CONFIG", "DATA"):
        monkeypatch.setenv(f"XDG_{name}_HOME", str(tmp_path / name.lower()))
    for key in list(__import__("os").environ):
        if key.startswith("ODH_APPLIANCE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ODH_APPLIANCE_REGISTRIES", f"http://127.0.0.1:{closed_port()}")
    yield


def make_app(*, initial: str = "overview", **backends: Any) -> ApplianceApp:
    backends.setdefault("watch_cluster", False)
    return ApplianceApp(Backends(api.load_config(), **backends), initial=initial)


def drive(app: ApplianceApp, scenario: Callable[[Pilot[None]], Awaitable[None]], size: tuple[int, int] = SIZE) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())


async def until(pilot: Pilot[None], condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; notifications: {notes(pilot.app)}")


def notes(app: ApplianceApp) -> list[str]:
    return [n.message for n in app._notifications]


def screen_text(app: ApplianceApp) -> str:
    """What the terminal shows now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])
