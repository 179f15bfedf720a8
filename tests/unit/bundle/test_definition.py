"""Bundle definitions (bundles/<name>.yaml): the shipped one parses; bad ones fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from appliance import errors
from appliance.bundle import build as bundle_build
from appliance.bundle import definition
from appliance.images import catalog
from tests.unit.bundle import synthetic

ROOT = Path(__file__).resolve().parents[3]

VALID = {
    "name": "small",
    "version": "0.1.0",
    "kubernetes": "1.34.1",
    "kind": "v0.30.0",
    "images": [{"name": "minio", "upstream": "quay.io/minio/minio:latest"}, {"name": "model-server"}],
    "binaries": [{"name": "kind", "version": "v0.30.0"}],
    "manifests": ["manifests"],
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "bundle.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_the_shipped_default_bundle_lists_every_platform_image() -> None:
    spec = definition.load_definition(ROOT / "bundles" / "default.yaml")
    assert spec.name == "default"
    # Every platform image, and the kind node image, so that `bundle load` + `up` need nothing else.
    cpu = {image.recipe for image in spec.images if not image.gpu}
    assert cpu == set(catalog.CATALOG) | {bundle_build.NODE_IMAGE_RECIPE}
    # GPU images: carried when built on the builder's machine, left out (never built) otherwise.
    assert {image.recipe for image in spec.images if image.gpu} == {"kind-node-gpu", "nvidia-device-plugin"}
    assert [b.name for b in spec.binaries] == ["kind"]
    assert spec.binaries[0].version == spec.kind


def test_a_valid_definition(tmp_path: Path) -> None:
    spec = definition.load_definition(write(tmp_path, VALID))
    assert spec.images[0].upstream == "quay.io/minio/minio:latest"
    assert spec.images[1].recipe == "model-server"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"version": "latest"}, "version: must look like 1.2.3"),
        ({"name": "Not A Name"}, "name: must be lowercase"),
        ({"images": [{"name": "minio"}, {"name": "minio"}]}, "image 'minio' is listed twice"),
        ({"binaries": [{"name": "kind", "version": "v0.29.0"}]}, "binary kind is v0.29.0 but kind: says v0.30.0"),
        ({"binaries": [{"name": "kind", "version": "v0.30.0", "source": "curl"}]}, "binaries.0.source"),
        ({"kubernetes": None}, "kubernetes: Input should be a valid string"),
        ({"kubernetes": 1.34}, "kubernetes: must look like 1.2.3"),
    ],
)
def test_bad_definitions_name_the_problem(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(errors.UsageError) as caught:
        definition.load_definition(write(tmp_path, {**VALID, **change}))
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="is not valid YAML at line 2"):
        definition.load_definition(write(tmp_path, "name: x\n  bad: indent\n"))


def test_not_a_mapping_and_missing(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="must be a mapping"):
        definition.load_definition(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(errors.UsageError, match="does not exist"):
        definition.load_definition(tmp_path / "absent.yaml")


def test_the_resolved_record_round_trips() -> None:
    record = synthetic.record(signed=True)
    again = definition.Resolved.from_yaml(record.to_yaml(), "test")
    assert again == record
    assert yaml.safe_load(record.to_yaml())["format"] == definition.FORMAT


def test_a_foreign_record_is_an_error() -> None:
    with pytest.raises(errors.ApplianceError, match="not a valid bundle record"):
        definition.Resolved.from_yaml("format: something-else/v9\nname: x\n", "b.odhbundle")
