#!/usr/bin/env bash
# cgroup v2: move this shell out of the root cgroup and enable every controller for /kubelet, so
# the kubelet (cgroupRoot /kubelet) can create pod cgroups beneath it.
set -o errexit -o nounset -o pipefail
mkdir -p /sys/fs/cgroup/init.scope
echo $$ >/sys/fs/cgroup/init.scope/cgroup.procs 2>/dev/null || true
for pid in $(cat /sys/fs/cgroup/cgroup.procs); do echo "${pid}" >/sys/fs/cgroup/init.scope/cgroup.procs 2>/dev/null || true; done
controllers=$(sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers)
echo "${controllers}" >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p /sys/fs/cgroup/kubelet
echo "${controllers}" >/sys/fs/cgroup/kubelet/cgroup.subtree_control
