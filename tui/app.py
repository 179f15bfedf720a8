"""The app shell: one mode per screen (`screens.SCREENS`), k9s-style keys, and the lost-cluster banner.

`:` jumps to a screen, `?` shows help, `/` filters (on the screens), `esc` goes back (closes the
filter, a dialog, or returns to the previous screen), `ctrl+q` quits. The app owns what outlives a
screen: the `Backends`, the local model servers screens started (stopped on exit), and the cluster
watch — every WATCH_INTERVAL seconds a worker asks the API server for its version; when a cluster
that answered stops answering, every screen shows a banner, and when it answers again the banner
goes and the current screen refreshes.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel

from appliance import api
from tui import screens
from tui.backends import Backends
from tui.screens.base import ResourceScreen
from tui.screens.dialogs import JumpDialog
from tui.screens.help import HelpScreen

WATCH_INTERVAL = 10.0


class ApplianceApp(App[None]):
    TITLE = "odh-appliance"
    CSS_PATH = Path(__file__).with_name("app.tcss")
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, type[ResourceScreen]]] = {s.NAME: s for s in screens.SCREENS}  # type: ignore[assignment]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("colon", "jump", "Jump", key_display=":"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("escape", "go_back", "Back", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, backends: Backends, *, initial: str = "overview") -> None:
        super().__init__()
        self.backends = backends
        self.initial = initial
        self.history: list[str] = []
        self.local_servers: list[api.LocalModelServer] = []
        self.cluster_known_up = False  # a cluster answered at least once in this session
        self.cluster_lost = False
        self.banner_text = ""

    def on_mount(self) -> None:
        self.switch_mode(self.initial)
        if self.backends.watch_cluster:
            self.watch_cluster()
            self.set_interval(WATCH_INTERVAL, self.watch_cluster)

    def on_unmount(self) -> None:
        for server in self.local_servers:
            server.stop()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Notifications carry names, paths and server messages (`[1, 4]`), never markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # --- navigation ------------------------------------------------------------------------------

    def goto(self, name: str) -> None:
        if name == self.current_mode:
            return
        self.history = [*self.history, self.current_mode][-20:]
        self.switch_mode(name)

    def action_jump(self) -> None:
        def jump(word: str | None) -> None:
            if not word:
                return
            if word.strip().lower().lstrip(":") in ("q", "quit", "q!"):  # as in k9s (and vi)
                self.exit()
                return
            target = screens.find(word)
            if target is None:
                names = ", ".join(s.NAME for s in screens.SCREENS)
                self.notify(f"no screen {word!r}; try one of: {names}", severity="warning")
                return
            self.goto(target.NAME)

        self.push_screen(JumpDialog(screens.kinds()), jump)

    def action_help(self) -> None:
        current = self.screen
        title = getattr(current, "TITLE", "") or "this screen"
        keys = list(current.KEYS) if isinstance(current, ResourceScreen) else []
        self.push_screen(HelpScreen(title, keys, screens.kinds()))

    def action_go_back(self) -> None:
        current = self.screen
        if isinstance(current, ResourceScreen) and current.close_filter(keep=False):
            return
        if len(self.screen_stack) > 1:
            self.pop_screen()
            return
        if self.history:
            previous = self.history[-1]
            self.history = self.history[:-1]
            self.switch_mode(previous)

    # --- local model servers ---------------------------------------------------------------------

    def adopt_server(self, server: api.LocalModelServer) -> None:
        """Keep a model server a screen started, so it stops when the app exits."""
        self.local_servers.append(server)

    # --- the cluster watch and the banner --------------------------------------------------------

    def watch_cluster(self) -> None:
        loaded = self.backends.loaded
        self.run_worker(lambda: self.call_from_thread(self.cluster_answered, api.cluster_problem(loaded)),
                        thread=True, group="cluster-watch", exclusive=True)  # fmt: skip

    def cluster_came_up(self) -> None:
        self.cluster_answered(None)

    def cluster_answered(self, problem: str | None) -> None:
        if problem is None:
            first = not self.cluster_known_up
            self.cluster_known_up = True
            if self.cluster_lost:
                self.cluster_lost = False
                self.set_banner("")
                self.notify("the cluster answers again")
                self.refresh_screen()
            elif first:
                self.refresh_screen()
            return
        if self.cluster_known_up and not self.cluster_lost:
            self.cluster_lost = True
            self.set_banner(
                f"CLUSTER LOST: {problem}. Retrying every {WATCH_INTERVAL:.0f}s; `appliance up` restarts it."
            )

    def set_banner(self, text: str) -> None:
        self.banner_text = text
        if isinstance(self.screen, ResourceScreen):
            self.screen.sync_banner()

    def refresh_screen(self) -> None:
        current = self.screen
        if isinstance(current, ResourceScreen) and current.NEEDS_CLUSTER:
            current.action_refresh()
