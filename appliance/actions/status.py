"""`appliance status`: what runs, read from the provider, the API server and the Docker engine."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance import errors, k8s
from appliance import exec as exec_mod
from appliance.actions import platform
from appliance.actions.context import Context


@dataclass
class Status:
    cluster: str
    provider: str
    state: str
    running: bool
    kubeconfig: str | None = None
    server_version: str | None = None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    platform_phase: str | None = None  # the DataScienceCluster's phase (None: no platform installed)
    object_storage: dict[str, str] | None = None  # MinIO's condition on the DSCInitialization
    components: list[dict[str, str]] = field(default_factory=list)  # one condition per component
    endpoints: list[dict[str, str]] = field(default_factory=list)  # name, url, auth (through the gateway)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(ctx: Context) -> Status:
    state = ctx.provider.state()
    status = Status(ctx.cfg.cluster_name, ctx.provider.name, state.detail, state.running and state.complete)
    if not status.running:
        return status
    status.kubeconfig = str(ctx.kubeconfig)
    try:
        cluster = ctx.cluster()
        status.server_version = cluster.server_version()
        status.nodes = [asdict(n) for n in k8s.nodes(cluster)]
        installed = platform.platform_state(cluster)
        status.platform_phase, status.object_storage = installed.phase, installed.object_storage
        status.components = installed.components if installed.phase is not None else []
        if installed.phase is not None:
            status.endpoints = platform.endpoints(ctx, cluster)
    except errors.ApplianceError as exc:
        status.problem = exc.message
    if state.nodes:
        status.resources = container_stats(state.nodes)
    return status


def container_stats(names: tuple[str, ...]) -> dict[str, str]:
    """CPU and memory use of the node containers, as `docker stats` reports them."""
    result = exec_mod.run(["docker", "stats", "--no-stream", "--format", "{{json .}}", *names], check=False)
    stats: dict[str, str] = {}
    for line in result.stdout.splitlines():
        data = json.loads(line)
        stats[data.get("Name", "?")] = f"CPU {data.get('CPUPerc', '?')}, memory {data.get('MemUsage', '?')}"
    return stats


PROBE_TIMEOUT = 3.0  # seconds for the API server's /version answer


def problem(ctx: Context) -> str | None:
    """None when the cluster's API server answers within seconds; else one line saying what is wrong.

    Cheap enough to poll (one version request with a short timeout): the TUI's lost-cluster banner.
    """
    if not ctx.kubeconfig.is_file():
        return f"no cluster {ctx.cfg.cluster_name!r} (no kubeconfig at {ctx.kubeconfig})"
    try:
        cluster = ctx.cluster()
        cluster.call(cluster.version_api.get_code, _request_timeout=PROBE_TIMEOUT)
    except errors.ApplianceError as exc:
        return exc.message
    return None
