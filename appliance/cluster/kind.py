"""The kind provider: a single-node cluster in a Docker container, from our node image.

It drives the `kind` binary (built from source, `recipes.KIND`, or found on PATH) through
`appliance.exec`. kind's own create flow does the kubeadm work; our node image makes it work
without a registry (see `appliance.images.nodeimage`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from appliance import config, errors, progress
from appliance import exec as exec_mod
from appliance.cluster import kindconfig
from appliance.cluster import provider as provider_mod
from appliance.images import gobuild, nodeimage, recipes
from appliance.images import gpu as gpu_images

CREATE_TIMEOUT = 900.0
NODE_ROLE_LABEL = "io.x-k8s.kind.role"
CLUSTER_LABEL = "io.x-k8s.kind.cluster"


class KindProvider:
    name = "kind"

    def __init__(self, cfg: config.Config, paths: config.Paths) -> None:
        self.cfg = cfg
        self.paths = paths
        self.dir = provider_mod.cluster_dir(paths, cfg)
        self._kind: str | None = None

    # -- the kind binary -------------------------------------------------------------------------
    def kind(self) -> str:
        """The kind binary: the appliance's own (bundle or source build), else one on PATH."""
        if self._kind is None:
            found = exec_mod.which("kind", [str(self.paths.bin_dir)])
            if found is None:
                found = str(gobuild.build(recipes.KIND, self.paths.cache_dir))
            self._kind = found
        return self._kind

    def _run(self, *args: str, timeout: float = 120.0, **kwargs: object) -> exec_mod.Result:
        return exec_mod.run([self.kind(), *args], timeout=timeout, **kwargs)  # type: ignore[arg-type]

    # -- state -----------------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        label = f"label={CLUSTER_LABEL}={self.cfg.cluster_name}"
        result = exec_mod.run(
            ["docker", "ps", "-a", "--filter", label, "--format", "{{.Names}}"],
            hint="is the Docker engine running? `appliance doctor` checks it",
        )
        return sorted(result.stdout.split())

    def state(self) -> provider_mod.ClusterState:
        names = self.node_names()
        if not names:
            return provider_mod.ClusterState(False, False, "no cluster")
        inspect = exec_mod.run(["docker", "inspect", *names])
        running = all(item["State"]["Running"] for item in json.loads(inspect.stdout))
        # kind writes this kubeconfig as the last step of `create`; without it creation did not finish.
        complete = (self.dir / "kind-kubeconfig").is_file()
        detail = ("running" if running else "stopped") + ("" if complete else ", creation did not finish")
        return provider_mod.ClusterState(True, running, detail, tuple(names), complete=complete)

    # -- lifecycle -------------------------------------------------------------------------------
    def node_image(self, *, gpu: bool = False) -> str:
        version = self.cfg.kubernetes_version
        return gpu_images.node_gpu_tag(version) if gpu else nodeimage.node_tag(version)

    def create(self, prog: progress.Progress, *, gpu: bool = False) -> None:
        image = self.node_image(gpu=gpu)
        if exec_mod.run(["docker", "image", "inspect", image], check=False).returncode != 0:
            raise errors.ApplianceError(
                f"the kind node image {image} is not in the local Docker engine",
                hint="build it from source (`appliance images node`, `appliance images gpu` for the GPU variant) "
                "or load a bundle (`appliance bundle load`)",
            )
        volumes = self.dir / "volumes"
        volumes.mkdir(parents=True, exist_ok=True)
        rendered = kindconfig.render_yaml(self.cfg, node_image=image, volumes_dir=volumes, gpu=gpu)
        config_file = self.dir / "kind-config.yaml"
        config_file.write_text(rendered)
        with prog.step(f"kind create cluster {self.cfg.cluster_name}") as step:
            self._run(
                "create", "cluster", "--name", self.cfg.cluster_name, "--config", str(config_file),
                "--kubeconfig", str(self.dir / "kind-kubeconfig"), "--wait", "0s",
                timeout=CREATE_TIMEOUT,
                on_line=lambda line: step.update(line.strip()[:160]) if line.strip() else None,
                hint="rerun with -v for kind's output; `docker logs <cluster>-control-plane` shows the node's boot",
            )  # fmt: skip

    def start(self, prog: progress.Progress) -> None:
        names = self.node_names()
        with prog.step(f"start {', '.join(names)}"):
            exec_mod.run(["docker", "start", *names], timeout=120)

    def delete(self, prog: progress.Progress, *, keep_data: bool) -> None:
        with prog.step(f"kind delete cluster {self.cfg.cluster_name}"):
            self._run("delete", "cluster", "--name", self.cfg.cluster_name, timeout=300)
        with prog.step("remove cluster files" + (" (keeping volume data)" if keep_data else "")):
            if self.dir.exists():
                for child in self.dir.iterdir():
                    if keep_data and child.name == "volumes":
                        continue
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
                if not keep_data:
                    self.dir.rmdir()

    def write_kubeconfig(self, path: Path) -> Path:
        text = self._run("get", "kubeconfig", "--name", self.cfg.cluster_name).stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.rename(path)
        return path

    def images(self) -> set[str]:
        present: set[str] = set()
        for node in self.node_names():
            listed = exec_mod.run(["docker", "exec", node, "ctr", "--namespace=k8s.io", "images", "list", "-q"])
            present.update(listed.stdout.split())
        return present

    def load_images(self, refs: Sequence[str], prog: progress.Progress) -> None:
        if not refs:
            return
        with prog.step(f"load {len(refs)} images into the node") as step:
            self._run(
                "load", "docker-image", "--name", self.cfg.cluster_name, *refs,
                timeout=1800, on_line=lambda line: step.update(line.strip()[:160]) if line.strip() else None,
            )  # fmt: skip
