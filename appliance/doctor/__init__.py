"""`appliance doctor`: preflight checks of the host, read from the real system.

`facts` gathers raw observations (Docker engine, cgroups, capabilities, resources, ports, binaries,
GPU, registries); `checks` turns them into pass/warn/fail results with hints, as pure functions that
unit tests drive with made-up facts. Called through `appliance.api.doctor`.
"""
