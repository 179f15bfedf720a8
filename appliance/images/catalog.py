"""The platform images: which exist, where their Dockerfiles live, and what each build context needs.

Called by `appliance.images.build` (to assemble contexts) and `appliance.bundle` (to resolve a bundle's
image entries). Each image is `images/<name>/Dockerfile` in the source tree, built `FROM` the base
image (`ARG BASE_IMAGE`). Besides its own directory, a context may need artifacts made on the host:
- `wheel`: a wheel of this project (`pip wheel --no-deps .`), for images that run our own code;
- `go:<name>`: a Go binary built from module source by `appliance.images.gobuild` (see `recipes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance import errors

IMAGE_REPO = "localhost/odh-appliance"


@dataclass(frozen=True)
class ImageSpec:
    name: str
    summary: str
    inputs: tuple[str, ...] = ()

    def context_dir(self, root: Path) -> Path:
        return root / "images" / self.name

    def repository(self) -> str:
        return f"{IMAGE_REPO}/{self.name}"


CATALOG: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("minio", "MinIO object storage, built from its Go module source", ("go:minio",)),
        ImageSpec("workbench", "JupyterLab 4 with the data science stack preinstalled"),
        ImageSpec("model-server", "the Open Inference Protocol model server (python -m appliance.serving)", ("wheel",)),
        ImageSpec("operator", "the platform operator (python -m appliance.operator)", ("wheel",)),
        ImageSpec("gateway", "the platform gateway: nginx from Debian's packages, configured by the operator"),
        ImageSpec("pipeline-runner", "pipeline server and task runner, kfp inside (appliance.pipelines)", ("wheel",)),
    )
}


def get(name: str) -> ImageSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise errors.UsageError(f"unknown image {name!r}", hint=f"known images: {', '.join(CATALOG)}") from None


def select(names: list[str] | tuple[str, ...]) -> list[ImageSpec]:
    """The specs for `names` in catalog order; every image when `names` is empty."""
    if not names:
        return list(CATALOG.values())
    wanted = {get(name).name for name in names}
    return [spec for spec in CATALOG.values() if spec.name in wanted]


def source_root(start: Path) -> Path:
    """The source checkout holding `images/` and `pyproject.toml`, found from the package location."""
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "images").is_dir():
            return candidate
    raise errors.ApplianceError(
        "building images needs the odh-appliance source tree (images/ and pyproject.toml), which is not here",
        hint="run from a git checkout of odh-appliance (pip install -e .), or load a prebuilt bundle instead",
    )
