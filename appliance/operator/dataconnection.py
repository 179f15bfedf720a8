"""The ODH-format data connection to the platform's MinIO, as a pure function.

Called by `handlers` for every namespace that asks for one. A namespace asks by carrying the label
`opendatahub.io/dashboard: "true"` — the label that makes a namespace an ODH "data science project",
so every project a workshop creates gets the connection without another step. The Secret has the
shape the ODH dashboard writes (DESIGN.md §3), so notebooks and InferenceServices that expect one
work unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.operator import minio

NAME = "aws-connection-minio"
PROJECT_LABEL = "opendatahub.io/dashboard"
DEFAULT_BUCKET = "data"
LABELS = {
    PROJECT_LABEL: "true",
    "opendatahub.io/managed": "true",
    "app.kubernetes.io/managed-by": "odh-appliance-operator",
}


def wants_connection(labels: Mapping[str, str] | None) -> bool:
    """Whether a namespace with these labels is a data science project (and so gets a connection)."""
    return (labels or {}).get(PROJECT_LABEL) == "true"


def secret(
    namespace: str,
    credentials: Mapping[str, str],
    endpoint: str,
    bucket: str = DEFAULT_BUCKET,
    region: str = minio.DEFAULT_REGION,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "labels": dict(LABELS),
            "annotations": {"opendatahub.io/connection-type": "s3", "openshift.io/display-name": "minio"},
        },
        "type": "Opaque",
        "stringData": {
            "AWS_ACCESS_KEY_ID": credentials["MINIO_ROOT_USER"],
            "AWS_SECRET_ACCESS_KEY": credentials["MINIO_ROOT_PASSWORD"],
            "AWS_S3_ENDPOINT": endpoint,
            "AWS_S3_BUCKET": bucket,
            "AWS_DEFAULT_REGION": region,
        },
    }
