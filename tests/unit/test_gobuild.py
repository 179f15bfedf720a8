"""Go-from-source recipes: cache keys, the wrapper module for k8s.io/kubernetes, version ldflags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from appliance import errors
from appliance.images import gobuild, kubernetes, recipes

K8S_GOMOD = """module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tgithub.com/spf13/cobra v1.9.1
)

require k8s.io/kubelet v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/some/fork => github.com/other/fork v1.0.0
)

replace k8s.io/kubelet => ./staging/src/k8s.io/kubelet
"""


ETCD_GOMOD = """module go.etcd.io/etcd/server/v3

require (
\tgo.etcd.io/etcd/api/v3 v3.6.4
\tgo.etcd.io/etcd/client/v3 v3.6.4 // indirect
)

require go.etcd.io/etcd/pkg/v3 v3.6.4

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v3 => ../client/v3
\tgo.etcd.io/etcd/pkg/v3 => ../pkg
)

// Bad imports are sometimes causing attempts to pull that code.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
"""


def test_staging_modules_from_block_and_single_line() -> None:
    assert gobuild.staging_modules(K8S_GOMOD) == ["k8s.io/api", "k8s.io/client-go", "k8s.io/kubelet"]


def test_local_replacements_skip_forbidden_guards() -> None:
    assert gobuild.staging_modules(ETCD_GOMOD) == [
        "go.etcd.io/etcd/api/v3",
        "go.etcd.io/etcd/client/v3",
        "go.etcd.io/etcd/pkg/v3",
    ]


def test_wrapper_gomod_pins_every_staging_module() -> None:
    text = gobuild.wrapper_gomod("k8s.io/kubernetes", "v1.34.1", "v0.34.1", ["k8s.io/client-go", "k8s.io/api"])
    assert "require k8s.io/kubernetes v1.34.1" in text
    assert "replace k8s.io/api => k8s.io/api v0.34.1" in text
    assert "replace k8s.io/client-go => k8s.io/client-go v0.34.1" in text


def test_kubernetes_recipe() -> None:
    kubeadm = kubernetes.binary("kubeadm", "1.34.1")
    assert kubeadm.package == "k8s.io/kubernetes/cmd/kubeadm"
    assert (kubeadm.version, kubeadm.staging_version) == ("v1.34.1", "v0.34.1")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.1" in kubeadm.ldflags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=34" in kubeadm.ldflags
    assert [b.name for b in kubernetes.binaries("1.34.1")] == list(kubernetes.COMMANDS)
    with pytest.raises(ValueError):
        kubernetes.binary("kube-nope", "1.34.1")


def test_recipe_hash_changes_with_every_input(tmp_path: Path) -> None:
    base = recipes.MINIO
    variants = [
        dataclasses.replace(base, version="v1.2.3"),
        dataclasses.replace(base, ldflags="-s -w"),
        dataclasses.replace(base, env={"GOAMD64": "v3"}),
        dataclasses.replace(base, module="github.com/minio/minio", staging_version="v0.1.0"),
    ]
    hashes = {base.recipe_hash(), *(v.recipe_hash() for v in variants)}
    assert len(hashes) == 5
    assert base.target(tmp_path).name == "minio"
    assert base.target(tmp_path).parent.parent == tmp_path / "go" / "bin"


def test_unpinned_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="pinned version"):
        gobuild.build(dataclasses.replace(recipes.MINIO, version="latest"), tmp_path)


def test_cached_binary_is_returned_without_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = recipes.MINIO.target(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    monkeypatch.setenv("PATH", "")  # no `go` anywhere: a cache hit must not need it
    assert gobuild.build(recipes.MINIO, tmp_path) == target


def test_missing_go_is_an_expected_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(errors.ApplianceError, match="needs the Go toolchain") as info:
        gobuild.build(recipes.MINIO, tmp_path)
    assert info.value.hint
