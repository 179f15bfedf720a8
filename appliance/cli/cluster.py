"""`appliance up`, `down`, `status` and `images node`: the cluster's lifecycle.

Registered in `appliance.cli.main`; everything goes through `appliance.api`.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from appliance import api
from appliance.cli import render
from appliance.cli.images import images
from appliance.cli.state import State, pass_state


@click.command()
@click.option("--merge-kubeconfig", is_flag=True, help="Also merge the cluster's context into ~/.kube/config.")
@click.option(
    "--gpu",
    type=click.Choice(["auto", "on", "off"]),
    help="Give the cluster this host's NVIDIA GPU: auto (when the host can; `appliance doctor` says), on "
    "(fail at once when it cannot), off. Overrides the `gpu` setting.",
)
@pass_state
def up(state: State, merge_kubeconfig: bool, gpu: str | None) -> None:
    """Create (or resume) the single-node cluster and install the platform on it.

    Builds the kind node image from source when it is missing (about 20 minutes the first time on
    2 cores; cached afterwards), creates the cluster, writes its kubeconfig under the data
    directory, and waits until the node is Ready and CoreDNS answers. Then it installs the platform:
    the CRDs, the operator, the DSCInitialization (MinIO) and the DataScienceCluster, waits for MinIO
    and reports each component. Running it again on a healthy cluster changes nothing and takes seconds.
    With a GPU (docs/gpu.md) the node is the GPU variant and the NVIDIA device plugin runs in it.
    """
    loaded = state.load_config(gpu=gpu)
    with render.LiveSteps(state.err) as live:
        kubeconfig = api.up(loaded, api.Progress(live), merge_kubeconfig=merge_kubeconfig)
    state.out.print(f"cluster {loaded.config.cluster_name!r} is up", highlight=False)
    state.out.print(f"  kubeconfig: {kubeconfig}", highlight=False)
    state.out.print(f"  try: kubectl --kubeconfig {kubeconfig} get nodes", highlight=False)
    state.out.print("  platform: `appliance status` shows each component's condition", highlight=False)
    state.out.print("  MinIO credentials (shown only on request): `appliance credentials`", highlight=False)
    print_endpoints(state, api.endpoints(loaded))


def print_endpoints(state: State, found: list[dict[str, str]]) -> None:
    if not found:
        return
    table = Table(title="endpoints (through the gateway)", title_justify="left")
    for column in ("what", "url", "auth"):
        table.add_column(column)
    for item in found:
        table.add_row(item["name"], item["url"], item["auth"])
    state.out.print(table)


@click.command()
@click.option("--keep-data", is_flag=True, help="Keep persistent-volume data on the host for the next `up`.")
@pass_state
def down(state: State, keep_data: bool) -> None:
    """Delete the cluster and its files (an existing, not-created-by-us cluster is left alone)."""
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        deleted = api.down(loaded, api.Progress(live), keep_data=keep_data)
    name = loaded.config.cluster_name
    state.out.print(f"cluster {name!r} deleted" if deleted else f"no cluster {name!r} to delete", highlight=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Show the cluster, its node, the Kubernetes version, images loaded, resource use, and the
    platform: the DataScienceCluster phase, MinIO, and each component's condition."""
    result = api.status(state.load_config())
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    state.out.print(f"cluster {result.cluster!r} ({result.provider}): {result.state}", highlight=False)
    if result.server_version:
        state.out.print(f"  Kubernetes {result.server_version}; kubeconfig {result.kubeconfig}", highlight=False)
    if result.nodes:
        table = Table(title="nodes", title_justify="left")
        gpus = any(node.get("allocatable_gpu") for node in result.nodes)
        for column in ("node", "ready", "kubelet", "runtime", "images", "cpu", "memory", *(["gpu"] if gpus else [])):
            table.add_column(column)
        for node in result.nodes:
            table.add_row(
                node["name"], "yes" if node["ready"] else "no", node["kubelet_version"], node["container_runtime"],
                str(node["images"]), node["allocatable_cpu"], node["allocatable_memory"],
                *([node.get("allocatable_gpu") or "0"] if gpus else []),
            )  # fmt: skip
        state.out.print(table)
    for name, usage in result.resources.items():
        state.out.print(f"  {name}: {usage}", highlight=False)
    if result.platform_phase is not None:
        storage = result.object_storage or {}
        state.out.print(f"platform: DataScienceCluster {result.platform_phase}", highlight=False)
        state.out.print(
            f"  object storage (MinIO): {storage.get('status', 'Unknown')} {storage.get('message', '')}".rstrip(),
            highlight=False,
        )
        table = Table(title="components", title_justify="left")
        for column in ("component", "managementState", "condition", "status", "reason", "message"):
            table.add_column(column)
        for item in result.components:
            table.add_row(
                item["name"], item["state"], item["condition"], item["status"], item["reason"], item["message"]
            )
        state.out.print(table)
    print_endpoints(state, result.endpoints)
    if result.problem:
        state.out.print(f"  problem: {result.problem}", highlight=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_state
def credentials(state: State, as_json: bool) -> None:
    """Print the MinIO root credentials (generated at install; stored in a Secret in the cluster).

    Every data science project (a namespace labelled opendatahub.io/dashboard=true) also gets them as
    the data connection Secret `aws-connection-minio`.
    """
    result = api.credentials(state.load_config())
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    state.out.print(f"MinIO (Secret {result['secret']})", highlight=False)
    state.out.print(f"  endpoint (in the cluster): {result['endpoint']}", highlight=False)
    if result.get("gateway_endpoint"):
        state.out.print(f"  endpoint (from this host): {result['gateway_endpoint']}", highlight=False)
    state.out.print(f"  access key: {result['access_key']}", highlight=False)
    state.out.print(f"  secret key: {result['secret_key']}", highlight=False)


@images.command("node")
@pass_state
def images_node(state: State) -> None:
    """Build the kind node image from source: Kubernetes, etcd, CoreDNS, pause, containerd (Debian).

    Everything is cached: the first build takes about 20 minutes on 2 cores, a rebuild seconds.
    """
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        tag = api.node_image(loaded, api.Progress(live))
    state.out.print(f"node image: {tag}", highlight=False)


@images.command("gpu")
@click.option(
    "--device-plugin-source",
    metavar="DIR",
    help="A git clone (or bare mirror) of github.com/NVIDIA/k8s-device-plugin holding the pinned release; "
    "[default: ~/.cache/odh-appliance/src/k8s-device-plugin]. Not needed once the image is built.",
)
@pass_state
def images_gpu(state: State, device_plugin_source: str | None) -> None:
    """Build the GPU images from source: the kind node's GPU variant (NVIDIA Container Toolkit) and
    the NVIDIA device plugin. Cached; the CPU-only node image is not changed (docs/gpu.md)."""
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        tags = api.gpu_images(loaded, api.Progress(live), device_plugin_source=device_plugin_source)
    for name, tag in tags.items():
        state.out.print(f"{name}: {tag}", highlight=False)
