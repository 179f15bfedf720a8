"""The platform operator (kopf): DataScienceCluster, DSCInitialization, MinIO, data connections.

Runs in the cluster from the operator image (`python -m appliance.operator`) and locally against a
kubeconfig for fast tests. Desired state comes from pure functions (`crds`, `components`, `minio`,
`dataconnection`, `install`); `handlers` is the thin kopf layer that applies it.
"""
