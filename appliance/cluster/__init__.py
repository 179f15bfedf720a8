"""Cluster providers: where the platform runs. `kind` creates a local single-node cluster from the
bundled node image; `kubeconfig` (and `openshift`) use a cluster that already exists. Actions reach a
provider only through `appliance.cluster.provider.Provider`.
"""
