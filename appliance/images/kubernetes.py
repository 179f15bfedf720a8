"""Recipes for the Kubernetes binaries, built from `k8s.io/kubernetes` source (DESIGN.md §4).

`k8s.io/kubernetes` replaces its staging modules with local paths, so it is built through a wrapper
module (see `gobuild.wrapper_module`), with version ldflags so that `kubeadm version` and the API
server report the real version instead of a placeholder.
"""

from __future__ import annotations

from appliance.images.gobuild import GoBinary

COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubelet",
    "kubeadm",
    "kubectl",
)

# A fixed build date keeps the recipe (and so the cache key) reproducible.
BUILD_DATE = "2025-09-09T00:00:00Z"


def version_ldflags(version: str) -> str:
    """`-X` flags for component-base and client-go version packages, plus stripped symbols."""
    major, minor, _ = version.split(".")
    values = {
        "gitVersion": f"v{version}",
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags.extend(f"-X {package}.{key}={value}" for key, value in values.items())
    return " ".join(flags)


def binary(command: str, version: str) -> GoBinary:
    if command not in COMMANDS:
        raise ValueError(f"unknown Kubernetes command {command!r}")
    _, minor, patch = version.split(".")
    return GoBinary(
        name=command,
        package=f"k8s.io/kubernetes/cmd/{command}",
        version=f"v{version}",
        module="k8s.io/kubernetes",
        staging_version=f"v0.{minor}.{patch}",
        ldflags=version_ldflags(version),
    )


def binaries(version: str) -> list[GoBinary]:
    return [binary(command, version) for command in COMMANDS]


# The add-on versions kubeadm 1.34 asks for (`kubeadm config images list`); `control_plane_images`
# checks them against what the built kubeadm prints, so a Kubernetes bump cannot drift silently.
ETCD_VERSION = "3.6.4"
COREDNS_VERSION = "1.12.1"
PAUSE_VERSION = "3.10.1"

ETCD = GoBinary(
    name="etcd",
    package="go.etcd.io/etcd/server/v3",
    version=f"v{ETCD_VERSION}",
    module="go.etcd.io/etcd/server/v3",
    staging_version=f"v{ETCD_VERSION}",
    ldflags="-s -w",
)

COREDNS = GoBinary(
    name="coredns",
    package="github.com/coredns/coredns",
    version=f"v{COREDNS_VERSION}",
    ldflags="-s -w",
)
