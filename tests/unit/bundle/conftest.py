"""Fixtures of the bundle unit tests (see `synthetic`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.bundle import synthetic


@pytest.fixture
def make_bundle(tmp_path: Path) -> synthetic.MakeBundle:
    return synthetic.maker(tmp_path)
