"""The existing-cluster provider: a cluster the user already runs (single-node OpenShift, or any
Kubernetes), reached through its kubeconfig. The appliance never creates or deletes such a cluster;
`up` installs the platform into it and `down` removes only the platform.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from appliance import config, errors, k8s, progress
from appliance.cluster import provider as provider_mod


class ExistingProvider:
    def __init__(self, cfg: config.Config, paths: config.Paths) -> None:
        assert cfg.kubeconfig is not None
        self.cfg = cfg
        self.source = cfg.kubeconfig.expanduser()
        self.name: str = cfg.provider

    def state(self) -> provider_mod.ClusterState:
        if not self.source.is_file():
            return provider_mod.ClusterState(False, False, f"kubeconfig {self.source} does not exist")
        try:
            version = k8s.Cluster(self.source).server_version()
        except errors.ApplianceError as exc:
            return provider_mod.ClusterState(True, False, exc.message)
        return provider_mod.ClusterState(True, True, f"Kubernetes {version}")

    def create(self, prog: progress.Progress, *, gpu: bool = False) -> None:
        raise errors.ApplianceError(
            f"the cluster of {self.source} does not answer, and the {self.name} provider does not create clusters",
            hint="start that cluster, fix the kubeconfig, or use --set provider=kind for a local one",
        )

    def start(self, prog: progress.Progress) -> None:
        self.create(prog)

    def delete(self, prog: progress.Progress, *, keep_data: bool) -> None:
        with prog.step(f"leave the existing cluster of {self.source} in place") as step:
            step.skip("the appliance does not delete clusters it did not create")

    def write_kubeconfig(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, path)
        path.chmod(0o600)
        return path

    def images(self) -> set[str]:
        cluster = k8s.Cluster(self.source)
        return {name for node in cluster.call(cluster.core.list_node).items
                for image in node.status.images or [] for name in image.names or []}  # fmt: skip

    def load_images(self, refs: Sequence[str], prog: progress.Progress) -> None:
        if refs:
            raise errors.ApplianceError(
                f"cannot load {len(refs)} local images into an existing {self.name} cluster",
                hint="push the bundle's images to a registry the cluster pulls from (not supported yet)",
            )
