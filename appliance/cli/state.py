"""Global CLI options shared by every subcommand, passed as click's `obj`.

Subcommand modules (`appliance.cli.<topic>`) use `pass_state` to receive it, so that they can live in
their own modules and `appliance.cli.main` only registers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from appliance import api


@dataclass
class State:
    verbose: int = 0
    config_file: str | None = None
    overrides: list[str] = field(default_factory=list)
    out: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))

    def load_config(self, **flags: Any) -> api.Loaded:
        """The effective config: file < environment < --set < this command's own flags."""
        return api.load_config(config_file=self.config_file, overrides=self.overrides, flags=flags)


pass_state = click.make_pass_decorator(State)
