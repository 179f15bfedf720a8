"""The screens you can jump to with `:`, in the order the help lists them.

Adding a screen is one module here (a `ResourceScreen` subclass with NAME, ALIASES, TITLE, SUMMARY)
and one line in SCREENS; the app builds its modes, the `:` prompt and the help from this tuple.
"""

from __future__ import annotations

from tui.screens import models, overview, pipelines, storage, workbenches
from tui.screens.base import ResourceScreen

SCREENS: tuple[type[ResourceScreen], ...] = (
    overview.OverviewScreen,
    workbenches.WorkbenchesScreen,
    models.ModelsScreen,
    pipelines.PipelinesScreen,
    storage.StorageScreen,
)


def find(word: str) -> type[ResourceScreen] | None:
    """The screen a `:` word names: its NAME, an alias, or the unambiguous start of one."""
    word = word.strip().lower().lstrip(":")
    if not word:
        return None
    for screen in SCREENS:
        if word == screen.NAME or word in screen.ALIASES:
            return screen
    starts = [s for s in SCREENS if any(n.startswith(word) for n in (s.NAME, *s.ALIASES))]
    return starts[0] if len(starts) == 1 else None


def kinds() -> list[tuple[str, str]]:
    return [(s.NAME, s.SUMMARY) for s in SCREENS]
