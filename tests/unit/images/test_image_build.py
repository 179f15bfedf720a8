"""Content hashes, the wheel's source hash, the base recipe and the image catalog (no Docker here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance import errors, progress
from appliance.images import base, catalog
from appliance.images import build as image_build

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "bin").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY bin/tool /usr/local/bin/tool\n")
    (ctx / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (ctx / "bin" / "tool").chmod(0o755)
    (ctx / "ca").mkdir()
    (ctx / image_build.CA_PATH).write_text("")
    return ctx


ARGS = {"BASE_IMAGE": "localhost/odh-appliance/base:bookworm-py3.11", "base image id": "sha256:1"}


def test_content_hash_is_stable(context: Path) -> None:
    assert image_build.content_hash(context, ARGS) == image_build.content_hash(context, dict(reversed(ARGS.items())))


def test_content_hash_follows_contents_modes_names_and_args(context: Path) -> None:
    before = image_build.content_hash(context, ARGS)
    seen = {before}
    (context / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool 2\n")
    seen.add(image_build.content_hash(context, ARGS))
    (context / "bin" / "tool").chmod(0o644)
    seen.add(image_build.content_hash(context, ARGS))
    (context / "bin" / "tool").rename(context / "bin" / "tool2")
    seen.add(image_build.content_hash(context, ARGS))
    seen.add(image_build.content_hash(context, {**ARGS, "base image id": "sha256:2"}))
    assert len(seen) == 5


def test_the_ca_bundle_does_not_change_the_image_hash(context: Path) -> None:
    before = image_build.content_hash(context, ARGS)
    (context / image_build.CA_PATH).write_text("-----BEGIN CERTIFICATE-----\nproxy\n-----END CERTIFICATE-----\n")
    assert image_build.content_hash(context, ARGS) == before


def test_sources_hash_ignores_bytecode_but_not_code(tmp_path: Path) -> None:
    (tmp_path / "appliance" / "__pycache__").mkdir(parents=True)
    (tmp_path / "appliance" / "__init__.py").write_text("__version__ = '1'\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    before = image_build.sources_hash(tmp_path)
    (tmp_path / "appliance" / "__pycache__" / "x.cpython-311.pyc").write_bytes(os.urandom(16))
    assert image_build.sources_hash(tmp_path) == before
    (tmp_path / "appliance" / "__init__.py").write_text("__version__ = '2'\n")
    assert image_build.sources_hash(tmp_path) != before


def test_base_recipe() -> None:
    recipe = base.DEFAULT
    assert recipe.tag == "localhost/odh-appliance/base:bookworm-py3.11"
    argv = recipe.debootstrap_argv(Path("/tmp/rootfs"))
    assert argv[:2] == ["debootstrap", "--variant=minbase"]
    assert "--include=python3,python3-venv,ca-certificates,tini" in argv
    assert argv[-2:] == ["bookworm", "/tmp/rootfs"]  # no mirror: debootstrap's default
    assert f"LABEL {base.RECIPE_LABEL}={recipe.recipe_hash()}" in recipe.import_changes()
    mirrored = base.BaseRecipe(mirror="http://mirror.example/debian")
    assert mirrored.debootstrap_argv(Path("/r"))[-1] == "http://mirror.example/debian"
    assert mirrored.recipe_hash() != recipe.recipe_hash()
    assert base.BaseRecipe(packages=("python3", "tini", "python3-venv", "ca-certificates")).recipe_hash() == (
        recipe.recipe_hash()
    )


def test_every_catalog_image_has_a_dockerfile_for_arbitrary_uids() -> None:
    for spec in catalog.CATALOG.values():
        dockerfile = (spec.context_dir(ROOT) / "Dockerfile").read_text()
        assert "ARG BASE_IMAGE" in dockerfile, spec.name
        assert "FROM ${BASE_IMAGE}" in dockerfile, spec.name
        assert "\nUSER 1001\n" in dockerfile, spec.name
        assert "chgrp -R 0" in dockerfile and "chmod -R g=u" in dockerfile, spec.name


def test_our_images_run_their_own_entry_points() -> None:
    entry = {
        "model-server": "appliance.serving",
        "operator": "appliance.operator",
        "pipeline-runner": "appliance.pipelines",
    }
    for name, module in entry.items():
        assert f'"python", "-m", "{module}"' in (ROOT / "images" / name / "Dockerfile").read_text()
        assert "wheel" in catalog.get(name).inputs


def test_the_workbench_pins_every_package() -> None:
    lines = [
        line
        for line in (ROOT / "images" / "workbench" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in line for line in lines)
    names = {line.split("==")[0] for line in lines}
    wanted = {"jupyterlab", "numpy", "pandas", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "kfp", "boto3"}
    assert wanted | {"minio", "matplotlib"} <= names


def test_catalog_selection() -> None:
    assert [s.name for s in catalog.select(["model-server", "minio"])] == ["minio", "model-server"]
    assert len(catalog.select([])) == len(catalog.CATALOG)
    with pytest.raises(errors.UsageError, match="unknown image 'postgres'"):
        catalog.select(["postgres"])


def test_source_root(tmp_path: Path) -> None:
    assert catalog.source_root(ROOT / "appliance") == ROOT
    with pytest.raises(errors.ApplianceError, match="needs the odh-appliance source tree"):
        catalog.source_root(tmp_path)


def test_a_missing_ca_bundle_is_refused_before_anything_runs(tmp_path: Path) -> None:
    options = image_build.BuildOptions(base_image="x", ca_bundle=tmp_path / "absent.pem")
    with pytest.raises(errors.UsageError, match="CA bundle .* does not exist"):
        image_build.build_images([], ROOT, tmp_path, options, progress.Progress())


def test_only_the_newest_wheels_are_kept(tmp_path: Path) -> None:
    for number in range(8):
        directory = tmp_path / f"hash{number}"
        directory.mkdir()
        (directory / "odh_appliance-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
        os.utime(directory, (1000 + number, 1000 + number))
    (tmp_path / "x.partial").mkdir()  # another process is building one right now
    image_build._prune_wheels(tmp_path, keep=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"hash{n}" for n in range(3, 8)] + ["x.partial"]
