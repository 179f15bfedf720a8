"""The acceptance scenario of images and bundles, on the real Docker engine (DESIGN.md §4).

Base image from debootstrap, two platform images (minio from Go source, model-server from our wheel),
a bundle with a binary (kind) and a manifest, signed; verify; one flipped byte makes verify and load
fail with a clear message and change nothing; remove the images, load the good bundle, run containers
from the loaded images as an arbitrary UID.

Expensive artifacts (the base root filesystem, Go binaries, the wheel) use the real user cache, so
only the first run on a machine is slow; bundles, keys and the data directory are temporary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import pytest

from appliance import api, errors, progress
from appliance.bundle import archive, sign
from tests.integration.conftest import RunCli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]  # the first run on a machine builds everything

REAL_CACHE_HOME = os.environ.get("XDG_CACHE_HOME") or str(Path(platformdirs.user_cache_dir()))
IMAGES = ["minio", "model-server"]
DEFINITION = """\
name: acceptance
version: 0.0.1
kubernetes: 1.34.1
kind: v0.30.0
images:
  - name: minio
    upstream: quay.io/minio/minio:odh-appliance-test
  - name: model-server
binaries:
  - name: kind
    version: v0.30.0
manifests: [manifests]
"""


@dataclass(frozen=True)
class Built:
    bundle: Path
    keys: sign.KeyPair
    images: list[api.BuiltImage]
    events: list[progress.StepEvent]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def image_id(ref: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", ref)
    return result.stdout.strip() if result.returncode == 0 else None


@pytest.fixture(scope="module")
def engine() -> None:
    if shutil.which("docker") is None or docker("version").returncode != 0:
        pytest.fail("the Docker engine is not reachable (start it: ../shared/tools/docker-engine start)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundle")


@pytest.fixture(scope="module")
def data_home(workdir: Path) -> Iterator[Path]:
    """A temporary XDG data dir (where load installs binaries); the cache stays the real one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(workdir / "data"))
        patch.setenv("XDG_CACHE_HOME", REAL_CACHE_HOME)
        yield workdir / "data"


@pytest.fixture(scope="module")
def built(engine: None, workdir: Path, data_home: Path) -> Built:
    """Base image, two platform images, a key pair and a signed bundle; shared by the tests below."""
    try:
        return build_everything(workdir)
    except errors.ApplianceError as exc:  # show what the failed command printed, not just its exit code
        pytest.fail("\n".join([f"error: {exc.message}", f"hint: {exc.hint}", *exc.details()]), pytrace=False)


def build_everything(workdir: Path) -> Built:
    loaded = api.load_config()
    recorder = progress.Recorder()
    prog = progress.Progress(recorder)
    base = api.images_base(loaded, prog)
    assert image_id(base.tag) == base.image_id
    options = api.image_build_options()
    images = api.images_build(loaded, prog, IMAGES, options)
    again = api.images_build(loaded, prog, IMAGES, options)
    for before, after in zip(images, again, strict=True):
        # An unchanged image is not rebuilt. (In a shared working tree someone may edit our Python sources
        # between the two calls; then model-server's content hash differs and a rebuild is right.)
        if after.content_hash == before.content_hash:
            assert (after.action, after.image_id) == ("cached", before.image_id), after
    assert again[0].action == "cached"  # minio: Go binary + Dockerfile only
    images = again

    (workdir / "manifests").mkdir()
    (workdir / "manifests" / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: odh\n")
    definition = workdir / "acceptance.yaml"
    definition.write_text(DEFINITION)
    keys = api.bundle_keygen(str(workdir / "keys" / "bundle.key"))
    output = workdir / "acceptance.odhbundle"
    plain = workdir / "plain.odhbundle"
    first = api.bundle_build(loaded, prog, str(definition), str(plain), options, compress=False)
    # A second build (signed, compressed) resumes from the staged image archive instead of saving again.
    result = api.bundle_build(loaded, prog, str(definition), str(output), options, sign_key=str(keys.private))
    if first.record.images == result.record.images:  # (unless someone edited our sources in between)
        assert result.reused_images
    assert output.stat().st_size < plain.stat().st_size * 0.7
    plain_sums, sums = api.bundle_verify(str(plain), prog).sums, api.bundle_verify(str(output), prog).sums
    assert plain_sums.keys() == sums.keys()
    assert plain_sums["images/images.tar"] == sums["images/images.tar"]  # bundle.yaml differs: time, signed
    return Built(output, keys, images, recorder.events)


def test_the_bundle_records_what_was_built(built: Built) -> None:
    bundle = built.bundle
    contents = api.bundle_inspect(str(bundle))
    record = contents.record
    assert record.signed and contents.signed
    images = {image.name: image for image in record.images}
    for image in built.images:
        assert images[image.name].id == image.image_id
        assert images[image.name].tag == image.tag
        assert images[image.name].size > 10_000_000
    assert images["minio"].upstream == "quay.io/minio/minio:odh-appliance-test"
    assert [(b.name, b.version) for b in record.binaries] == [("kind", "v0.30.0")]
    assert [m.path for m in record.manifests] == ["manifests/manifests/namespace.yaml"]
    paths = [path for path, _ in contents.files]
    assert paths[:3] == [archive.SUMS, archive.SIGNATURE, archive.RECORD]
    assert {"bin/kind", "images/images.tar"} <= set(paths)
    # Byte progress was reported while saving and packing.
    byte_steps = {e.title for e in built.events if e.unit == "B"}
    assert any(title.startswith("pack ") for title in byte_steps)


def test_verify_checks_every_file_and_the_signature(built: Built, run_cli: RunCli) -> None:
    bundle, keys = built.bundle, built.keys
    env = {"XDG_CACHE_HOME": REAL_CACHE_HOME}
    ok = run_cli("bundle", "verify", str(bundle), "--key", str(keys.public), env=env)
    assert ok.returncode == 0, ok.stderr
    assert "match SHA256SUMS; signature OK" in ok.stdout
    inspect = run_cli("bundle", "inspect", str(bundle), "--json", env=env)
    assert inspect.returncode == 0, inspect.stderr
    assert inspect.json()["record"]["name"] == "acceptance"


def test_a_flipped_byte_fails_verify_and_load_and_changes_nothing(
    built: Built, run_cli: RunCli, workdir: Path, data_home: Path
) -> None:
    bundle = built.bundle
    bad = workdir / "damaged.odhbundle"
    shutil.copyfile(bundle, bad)
    middle = bad.stat().st_size // 2  # inside the (compressed) image archive, by far the largest member
    with bad.open("r+b") as handle:
        handle.seek(middle)
        value = handle.read(1)[0]
        handle.seek(middle)
        handle.write(bytes([value ^ 0x01]))

    verify = run_cli("bundle", "verify", str(bad))
    assert verify.returncode == 1, verify.stderr
    assert f"error: bundle {bad} is damaged: images/images.tar" in " ".join(verify.stderr.split()), verify.stderr
    assert "Traceback" not in verify.stderr

    # load refuses it before touching the engine or the bin directory.
    remove_images(built)
    bin_dir = data_home / "odh-appliance" / "bin"
    load = run_cli("bundle", "load", str(bad), env={"XDG_DATA_HOME": str(data_home)})
    assert load.returncode == 1, load.stderr
    assert "is damaged: images/images.tar" in " ".join(load.stderr.split()), load.stderr
    assert "nothing was changed" in load.stderr
    for image in built.images:
        assert image_id(image.tag) is None, f"{image.tag} appeared although the bundle was refused"
    assert not bin_dir.exists()

    with pytest.raises(errors.ApplianceError, match=r"is damaged: images/images\.tar"):
        api.bundle_verify(str(bad), progress.Progress())


def test_load_restores_the_images_and_they_run(built: Built, run_cli: RunCli, data_home: Path) -> None:
    bundle, keys = built.bundle, built.keys
    remove_images(built)
    env = {"XDG_DATA_HOME": str(data_home)}
    load = run_cli("bundle", "load", str(bundle), "--key", str(keys.public), "--json", env=env)
    assert load.returncode == 0, load.stderr
    info = load.json()
    assert sorted(info["images"]) == sorted(image.tag for image in built.images)
    kind = Path(info["binaries"][0])
    assert kind.name == "kind" and os.access(kind, os.X_OK)
    assert "v0.30.0" in subprocess.run([kind, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    for image in built.images:
        assert image_id(image.tag) == image.image_id
        # `appliance up` installs <repository>:latest, so a loaded bundle must provide it.
        assert image_id(image.tag.rpartition(":")[0] + ":latest") == image.image_id
    assert image_id("quay.io/minio/minio:odh-appliance-test") is not None

    tags = {image.name: image.tag for image in built.images}
    minio = docker("run", "--rm", "--network", "none", "--user", "4242:0", tags["minio"], "--version")
    assert minio.returncode == 0, minio.stderr
    assert "minio version" in minio.stdout
    server = docker(
        "run", "--rm", "--network", "none", "--user", "4242:0", "--entrypoint", "python", tags["model-server"],
        "-c", "import os, appliance.serving, onnxruntime; open(os.path.expanduser('~/probe'), 'w'); print('ok')",
    )  # fmt: skip
    assert server.returncode == 0, server.stderr
    assert server.stdout.strip() == "ok"


def remove_images(built: Built) -> None:
    """Remove the built images themselves (by ID, so every tag goes), not just one tag."""
    ids = [image.image_id for image in built.images]
    removed = docker("image", "rm", "--force", *ids)
    for ref in ids:
        assert image_id(ref) is None, f"could not remove {ref}: {removed.stderr}"


def test_base_from_an_existing_image(engine: None, run_cli: RunCli, workdir: Path) -> None:
    """`images base --from IMAGE` (for hosts that reach a registry), with local images: one with python3
    and tini becomes the base as it is; one without tini (like python:3.11-slim) gets tini from apt; one
    without python3 is refused with a clear message and leaves the base tag alone."""
    base_id = image_id(api.DEFAULT_BASE_IMAGE)
    assert base_id is not None, "the base image is built by the module fixture above"
    alias = "localhost/odh-appliance-test/python:3.11"
    slim = "localhost/odh-appliance-test/python-without-tini:3.11"
    nopython = "localhost/odh-appliance-test/nopython:1"
    assert docker("tag", api.DEFAULT_BASE_IMAGE, alias).returncode == 0
    no_tini = subprocess.run(
        ["docker", "build", "--network", "none", "-t", slim, "-"],
        input=f"FROM {api.DEFAULT_BASE_IMAGE}\nRUN dpkg --purge tini\n",
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert no_tini.returncode == 0, no_tini.stderr
    (workdir / "hello.txt").write_text("no python here\n")
    subprocess.run(
        ["tar", "-C", str(workdir), "-cf", str(workdir / "nopython.tar"), "hello.txt"], check=True, timeout=30
    )
    assert docker("import", str(workdir / "nopython.tar"), nopython).returncode == 0
    try:
        ok = run_cli("images", "base", "--from", alias)
        assert ok.returncode == 0, ok.stderr
        assert image_id(api.DEFAULT_BASE_IMAGE) == base_id

        refused = run_cli("images", "base", "--from", nopython)
        assert refused.returncode == 2
        assert f"error: {nopython} has no working python3" in refused.stderr
        assert image_id(api.DEFAULT_BASE_IMAGE) == base_id

        added = run_cli("images", "base", "--from", slim)
        assert added.returncode == 0, added.stderr
        new_base = image_id(api.DEFAULT_BASE_IMAGE)
        assert new_base not in (None, base_id, image_id(slim))
        tini = docker(
            "run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/tini", api.DEFAULT_BASE_IMAGE, "--version"
        )
        assert tini.returncode == 0 and "tini version" in tini.stdout, tini.stderr
    finally:
        docker("tag", base_id, api.DEFAULT_BASE_IMAGE)  # the images built above stay valid
        docker("image", "rm", alias, slim, nopython)
        leftover = [ref for ref in (alias, slim, nopython) if image_id(ref) is not None]
        assert not leftover
    assert image_id(api.DEFAULT_BASE_IMAGE) == base_id
