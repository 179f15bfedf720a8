"""Old content-hash tags are pruned after a build, on the real Docker engine (`engine.prune_tags`).

The tags all point at one small image that is already here (the base image), so nothing is built and
removing a tag only untags; the image itself is never touched.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from appliance.images import base, build, engine

REPO = "localhost/odh-appliance-test/prune"


def tags() -> set[str]:
    out = subprocess.run(["docker", "images", REPO, "--format", "{{.Tag}}"], capture_output=True, text=True,
                         check=True, timeout=60).stdout  # fmt: skip
    return set(out.split())


@pytest.fixture
def tagged() -> Iterator[list[str]]:
    source = base.DEFAULT.tag
    if engine.inspect(source) is None:
        pytest.skip(f"{source} is not built here (appliance images base); nothing to tag")
    names = [f"{n:016x}" for n in range(1, 6)] + ["latest", "v1"]
    for name in names:
        engine.tag(source, f"{REPO}:{name}")
    yield names
    engine.remove(f"{REPO}:{name}" for name in tags())


def test_only_old_content_tags_go(tagged: list[str]) -> None:
    keep = tagged[0]
    removed = engine.prune_tags(REPO, build.CONTENT_TAG, keep=[keep], newest=1)
    left = tags()
    assert keep in left and "latest" in left and "v1" in left  # the current tag and non-content tags stay
    hex_left = {t for t in left if t not in ("latest", "v1")}
    assert len(hex_left) == 2  # the kept one, and the newest other
    assert len(removed) == 3 and all(r.startswith(f"{REPO}:") for r in removed)
    assert engine.inspect(base.DEFAULT.tag) is not None  # the image itself is untouched
