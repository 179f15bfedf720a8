"""Moves kfp's artifact mount prefixes (/minio/, /s3/, /gcs/) under $ODH_PIPELINES_MOUNT_ROOT.

The launcher puts this directory on PYTHONPATH of a task subprocess when it runs outside a pod:
there `/minio/bucket/key` is not writable, so artifacts live under a scratch mount root instead. The
patch happens only when the task imports kfp's artifact types (an import hook), so Python programs
that never import kfp pay nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType

_TARGET = "kfp.dsl.types.artifact_types"


def _patch(module: ModuleType, root: str) -> None:
    for attr, mount in (("_MINIO_LOCAL_MOUNT_PREFIX", "minio"), ("_S3_LOCAL_MOUNT_PREFIX", "s3")):
        setattr(module, attr, os.path.join(root, mount) + "/")
    module._GCS_LOCAL_MOUNT_PREFIX = os.path.join(root, "gcs") + "/"  # type: ignore[attr-defined]


class _Hook(importlib.abc.MetaPathFinder):
    def __init__(self, root: str) -> None:
        self.root = root

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module
        root = self.root

        def exec_module(module: ModuleType) -> None:
            original(module)
            _patch(module, root)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("ODH_PIPELINES_MOUNT_ROOT"):
    sys.meta_path.insert(0, _Hook(os.environ["ODH_PIPELINES_MOUNT_ROOT"]))
