"""What every action step works on: the configuration, the XDG paths, the provider, progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance import config, k8s, progress
from appliance.cluster import provider as provider_mod


@dataclass
class Context:
    cfg: config.Config
    paths: config.Paths
    provider: provider_mod.Provider
    progress: progress.Progress
    source_root: Callable[[], Path]  # where images/ lives (needed only to build the node image)
    # The platform images `up` loaded into the node, by name → content-hash tag: the operator is given
    # exactly these, even if an image is rebuilt (and `:latest` moves) while `up` runs.
    images: dict[str, str] = field(default_factory=dict)
    _cluster: k8s.Cluster | None = field(default=None, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return provider_mod.kubeconfig_path(self.paths, self.cfg)

    def cluster(self) -> k8s.Cluster:
        if self._cluster is None:
            self._cluster = k8s.Cluster(self.kubeconfig)
        return self._cluster
