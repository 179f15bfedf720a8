"""Pinned from-source recipes for the Go programs the appliance ships (DESIGN.md §4)."""

from __future__ import annotations

from appliance import errors
from appliance.images.gobuild import GoBinary

MINIO = GoBinary(
    name="minio",
    package="github.com/minio/minio",
    version="v0.0.0-20260212201848-7aac2a2c5b7c",
)

# kind v0.30.0 defaults to Kubernetes v1.34.0 node images and still supports cgroup v1 hosts.
KIND = GoBinary(
    name="kind",
    package="sigs.k8s.io/kind",
    version="v0.30.0",
)

ALL = {b.name: b for b in (MINIO, KIND)}


def get(name: str) -> GoBinary:
    """The recipe called `name`; an unknown name is bad input (a bundle definition names it)."""
    try:
        return ALL[name]
    except KeyError:
        raise errors.UsageError(f"no from-source recipe for {name!r}", hint=f"known: {', '.join(ALL)}") from None
