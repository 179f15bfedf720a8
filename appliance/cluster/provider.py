"""The narrow interface every cluster provider implements, and the choice of provider.

Shared logic (writing the kubeconfig, waiting for readiness) lives in `appliance.k8s` and the actions,
never copied into a provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from appliance import config, errors, progress


@dataclass(frozen=True)
class ClusterState:
    """What a provider can tell without talking to the API server."""

    exists: bool
    running: bool
    detail: str = ""
    nodes: tuple[str, ...] = field(default=())
    complete: bool = True  # False when creation stopped half-way (an interrupted `up`)


class Provider(Protocol):
    name: str

    def state(self) -> ClusterState:
        """Whether the cluster exists and its node containers run."""
        ...

    def create(self, prog: progress.Progress, *, gpu: bool = False) -> None:
        """Create the cluster (with `gpu`: able to give pods the host's NVIDIA GPU, docs/gpu.md); on
        failure leave nothing behind (unless told to retain)."""
        ...

    def start(self, prog: progress.Progress) -> None:
        """Start an existing but stopped cluster (after a reboot or `docker stop`)."""
        ...

    def delete(self, prog: progress.Progress, *, keep_data: bool) -> None:
        """Delete the cluster; with `keep_data`, persistent-volume data stays on the host."""
        ...

    def write_kubeconfig(self, path: Path) -> Path:
        """Write an admin kubeconfig for the cluster to `path`."""
        ...

    def load_images(self, refs: Sequence[str], prog: progress.Progress) -> None:
        """Make local Docker images available to the cluster's container runtime."""
        ...

    def images(self) -> set[str]:
        """The image references the cluster's container runtime holds now."""
        ...


def cluster_dir(paths: config.Paths, cfg: config.Config) -> Path:
    """Per-cluster state on the host: kubeconfig, kind config, volumes."""
    return paths.data_dir / "clusters" / cfg.cluster_name


def kubeconfig_path(paths: config.Paths, cfg: config.Config) -> Path:
    return cluster_dir(paths, cfg) / "kubeconfig"


def for_config(cfg: config.Config, paths: config.Paths) -> Provider:
    # Imported here: each provider module pulls in what only it needs.
    if cfg.provider == "kind":
        from appliance.cluster import kind  # noqa: PLC0415

        return kind.KindProvider(cfg, paths)
    from appliance.cluster import existing  # noqa: PLC0415

    if cfg.kubeconfig is None:
        raise errors.ConfigError(
            f"provider {cfg.provider!r} needs a kubeconfig of the existing cluster",
            hint="set it: --set kubeconfig=/path/to/kubeconfig (or kubeconfig: in config.yaml)",
        )
    return existing.ExistingProvider(cfg, paths)
