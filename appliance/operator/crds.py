"""CustomResourceDefinitions of the ODH/KServe/Kubeflow APIs the appliance serves (DESIGN.md §3).

Called by `install.manifests` (and so by `appliance up`) to register the APIs before the operator
starts. The schemas are deliberately permissive (`x-kubernetes-preserve-unknown-fields`): upstream
YAML written for ODH/RHOAI must apply unchanged, and the operator validates what it uses and reports
problems in status conditions instead of the API server rejecting the object.
"""

from __future__ import annotations

from typing import Any

OPEN_OBJECT: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

DSC_GROUP = "datasciencecluster.opendatahub.io"
DSCI_GROUP = "dscinitialization.opendatahub.io"
KUBEFLOW_GROUP = "kubeflow.org"
KSERVE_GROUP = "serving.kserve.io"


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


AGE = _column("Age", ".metadata.creationTimestamp", "date")


def _ready_column(name: str = "Ready") -> dict[str, Any]:
    return _column(name, '.status.conditions[?(@.type=="Ready")].status')


def crd(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    scope: str = "Namespaced",
    short_names: tuple[str, ...] = (),
    columns: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """One CRD with a single served+stored version, a status subresource and an open schema."""
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": OPEN_OBJECT,
            "status": OPEN_OBJECT,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/part-of": "odh-appliance"}},
        "spec": {
            "group": group,
            "scope": scope,
            "names": names,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                    "additionalPrinterColumns": [*columns, AGE],
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    """Every CRD the appliance installs, in the order `up` applies them."""
    phase = _column("Phase", ".status.phase")
    return [
        crd(
            DSCI_GROUP,
            "v1",
            "DSCInitialization",
            "dscinitializations",
            scope="Cluster",
            short_names=("dsci",),
            columns=(_column("Applications Namespace", ".spec.applicationsNamespace"), phase, _ready_column()),
        ),
        crd(
            DSC_GROUP,
            "v1",
            "DataScienceCluster",
            "datascienceclusters",
            scope="Cluster",
            short_names=("dsc",),
            columns=(phase, _ready_column()),
        ),
        crd(
            KUBEFLOW_GROUP,
            "v1",
            "Notebook",
            "notebooks",
            columns=(_ready_column(), _column("URL", ".status.url", priority=1)),
        ),
        crd(
            KSERVE_GROUP,
            "v1beta1",
            "InferenceService",
            "inferenceservices",
            short_names=("isvc",),
            columns=(_column("URL", ".status.url"), _ready_column()),
        ),
        crd(
            KSERVE_GROUP,
            "v1alpha1",
            "ServingRuntime",
            "servingruntimes",
            columns=(
                _column("Disabled", ".spec.disabled", "boolean"),
                _column("ModelType", ".spec.supportedModelFormats[*].name"),
            ),
        ),
    ]


def crd_names() -> list[str]:
    return [doc["metadata"]["name"] for doc in all_crds()]
