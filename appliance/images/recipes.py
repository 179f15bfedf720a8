"""Pinned from-source recipes for the Go programs the appliance ships (DESIGN.md §4)."""

from __future__ import annotations

from appliance.images.gobuild import GoBinary

MINIO = GoBinary(
    name="minio",
    package="github.com/minio/minio",
    version="v0.0.0-20260212201848-7aac2a2c5b7c",
)

ALL = {b.name: b for b in (MINIO,)}
