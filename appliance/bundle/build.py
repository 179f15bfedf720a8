"""`appliance bundle build`: resolve a definition, stage every artifact in the cache, pack one archive.

Called by `appliance.api.bundle_build`. The steps:
1. build (or find cached) each image the definition lists (`appliance.images.build`), and each binary
   (`appliance.images.gobuild`);
2. stage them under `<cache>/bundles/<name>/payload/`: `docker save` of every image into one archive
   (layers the images share are stored once), the binaries, the manifests;
3. write the resolved `bundle.yaml`, `SHA256SUMS` (and `SHA256SUMS.sig` with a signing key);
4. pack the payload (zstd-compressed unless `compress` is off) into `OUTPUT.partial`, rename it to OUTPUT.

Resuming: the saved image archive is the slow part; it is kept with a note of the image IDs it holds
(`<cache>/bundles/<name>/state/images.json`), so after an interruption a rerun reuses it when the
images are unchanged and only repacks.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

import appliance
from appliance import errors, progress
from appliance.bundle import archive, definition, sign
from appliance.images import base, catalog, engine, gobuild, nodeimage, recipes
from appliance.images import build as image_build
from appliance.images import gpu as gpu_images

IMAGES_ARCHIVE = "images/images.tar"
# An image entry with this recipe is the kind node image (appliance.images.nodeimage), which is
# assembled from source rather than built from images/<name>.
NODE_IMAGE_RECIPE = "kind-node"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class BuildResult:
    output: Path
    record: definition.Resolved
    size: int
    files: int
    reused_images: bool


def build(
    definition_path: Path,
    output: Path,
    root: Path,
    cache_dir: Path,
    options: image_build.BuildOptions,
    prog: progress.Progress,
    *,
    sign_key: Path | None = None,
    compress: bool = True,
) -> BuildResult:
    spec = definition.load_definition(definition_path)
    private_key = sign.load_private(sign_key) if sign_key is not None else None  # fail before the long work
    if output.is_dir():
        raise errors.UsageError(f"{output} is a directory", hint="pass a file name, e.g. -o default.odhbundle")
    if not output.parent.is_dir():
        raise errors.UsageError(f"directory {output.parent} does not exist", hint="create it or choose another -o")
    manifest_sources = _manifest_sources(spec, definition_path.parent)
    specs = [catalog.get(e.recipe) for e in spec.images if e.recipe != NODE_IMAGE_RECIPE and not e.gpu]
    gpu_tags = _gpu_tags(spec)
    binaries = [dataclasses.replace(recipes.get(b.name), version=b.version) for b in spec.binaries]

    if engine.inspect(options.base_image) is None and options.base_image == base.DEFAULT.tag:
        base.ensure(base.DEFAULT, cache_dir, prog)
    built = image_build.build_images(specs, root, cache_dir, options, prog) if specs else []
    if any(entry.recipe == NODE_IMAGE_RECIPE for entry in spec.images):
        built.append(_node_image(spec.kubernetes, root, cache_dir, prog))
    built += _gpu_built(gpu_tags, prog)

    work = cache_dir / "bundles" / spec.name
    payload, state = work / "payload", work / "state"
    state.mkdir(parents=True, exist_ok=True)
    resolved_images = _resolved_images(spec, built)
    images_file, reused = _save_images(resolved_images, payload, state, options.base_image, prog)

    resolved_binaries = []
    with prog.step(f"binaries ({', '.join(b.name for b in binaries) or 'none'})") as step:
        shutil.rmtree(payload / "bin", ignore_errors=True)
        for recipe in binaries:
            step.update(f"go install {recipe.package}@{recipe.version} (cached after the first time)")
            path = gobuild.build(recipe, cache_dir, on_line=lambda line: step.update(line[:160]))
            target = payload / "bin" / recipe.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            resolved_binaries.append(
                definition.ResolvedBinary(
                    name=recipe.name,
                    version=recipe.version,
                    source=f"go install {recipe.package}@{recipe.version}",
                    path=f"bin/{recipe.name}",
                    size=target.stat().st_size,
                    sha256=archive.file_sha256(target),
                )
            )
        step.update(", ".join(f"{b.name} {b.version}" for b in resolved_binaries) or "none")

    shutil.rmtree(payload / "manifests", ignore_errors=True)
    resolved_manifests = []
    for source, relative in manifest_sources:
        target = payload / "manifests" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        resolved_manifests.append(
            definition.ResolvedFile(
                path=f"manifests/{relative}", size=target.stat().st_size, sha256=archive.file_sha256(target)
            )
        )

    record = definition.Resolved(
        name=spec.name,
        version=spec.version,
        kubernetes=spec.kubernetes,
        kind=spec.kind,
        created=datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        builder=f"odh-appliance {appliance.__version__}",
        signed=private_key is not None,
        images=resolved_images,
        binaries=resolved_binaries,
        manifests=resolved_manifests,
        archives=[images_file] if images_file else [],
    )
    known = {f.path: f.sha256 for f in (*resolved_manifests, *record.archives)}
    known |= {b.path: b.sha256 for b in resolved_binaries}
    with prog.step("write bundle.yaml and SHA256SUMS"):
        finalize(payload, record, private_key, known)
    size = pack(payload, output, prog, compress=compress)
    return BuildResult(output, record, size, len(archive.staged_files(payload)), reused)


def finalize(
    payload: Path,
    record: definition.Resolved,
    private_key: ed25519.Ed25519PrivateKey | None,
    known: dict[str, str] | None = None,
) -> None:
    """Write `bundle.yaml`, `SHA256SUMS` over every payload file (`known` digests are not recomputed) and,
    with a key, `SHA256SUMS.sig`."""
    for name in archive.HEADER_FILES:
        (payload / name).unlink(missing_ok=True)
    (payload / archive.RECORD).write_text(record.to_yaml())
    known = known or {}
    files = archive.staged_files(payload)
    sums = {name: known.get(name) or archive.file_sha256(payload / name) for name in files}
    sums_bytes = archive.format_sums(sums)
    (payload / archive.SUMS).write_bytes(sums_bytes)
    if private_key is not None:
        (payload / archive.SIGNATURE).write_bytes(sign.sign(sums_bytes, private_key))


def pack(payload: Path, output: Path, prog: progress.Progress, *, compress: bool = True) -> int:
    """Pack a staged payload into `output` (via OUTPUT.partial, so a half-written file never has the name)."""
    files = archive.staged_files(payload)
    total = sum((payload / name).stat().st_size for name in files)
    partial = output.with_name(output.name + ".partial")
    with prog.step(f"pack {output.name}") as step:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            step.update(f"{len(files)} files{', zstd' if compress else ''}", completed=done, total=total, unit="B")

        archive.pack(payload, files, partial, advance, compress=compress)
        os.replace(partial, output)
        step.update(f"{len(files)} files, {output.stat().st_size / 1e6:.0f} MB{' (zstd)' if compress else ''}")
    return output.stat().st_size


def _node_image(kubernetes: str, root: Path, cache_dir: Path, prog: progress.Progress) -> image_build.BuiltImage:
    """The kind node image (`appliance images node`): not built from images/<name> but assembled."""
    tag = nodeimage.build_node_image(kubernetes.removeprefix("v"), root, cache_dir, prog)
    info = engine.require(tag, hint="`appliance images node` reported success but the image is missing")
    recipe = info.labels.get(nodeimage.RECIPE_LABEL, "")
    return image_build.BuiltImage(NODE_IMAGE_RECIPE, tag, info.id, recipe, info.size, "built")


def _gpu_tags(spec: definition.Definition) -> dict[str, str]:
    """The tag of each `gpu: true` entry's image, by recipe; an unknown GPU recipe is bad input."""
    known = {"kind-node-gpu": gpu_images.node_gpu_tag(spec.kubernetes.removeprefix("v")),
             "nvidia-device-plugin": gpu_images.device_plugin_tag()}  # fmt: skip
    tags = {}
    for entry in (e for e in spec.images if e.gpu):
        if entry.recipe not in known:
            raise errors.UsageError(
                f"image {entry.name!r} is marked gpu but {entry.recipe!r} is no GPU image",
                hint=f"GPU images: {', '.join(known)}",
            )
        tags[entry.recipe] = known[entry.recipe]
    return tags


def _gpu_built(tags: dict[str, str], prog: progress.Progress) -> list[image_build.BuiltImage]:
    """GPU images that are built on this machine (never built here: CPU-only builders do not wait)."""
    built = []
    for recipe, tag in tags.items():
        info = engine.inspect(tag)
        with prog.step(f"GPU image {tag}") as step:
            if info is None or not gpu_images.image_is_current(tag):
                step.skip("not built here: left out (`appliance images gpu` builds it, then it is included)")
                continue
            step.skip("built: included")
            content = info.labels.get(gpu_images.RECIPE_LABEL, "")
            built.append(image_build.BuiltImage(recipe, tag, info.id, content, info.size, "cached"))
    return built


def _resolved_images(
    spec: definition.Definition, built: list[image_build.BuiltImage]
) -> list[definition.ResolvedImage]:
    by_recipe = {b.name: b for b in built}
    images = []
    for entry in spec.images:
        if entry.gpu and entry.recipe not in by_recipe:
            continue  # a GPU image that is not built on this machine (see _gpu_built)
        image = by_recipe[entry.recipe]
        if entry.upstream:
            engine.tag(image.tag, entry.upstream)
        images.append(
            definition.ResolvedImage(
                name=entry.name,
                tag=image.tag,
                upstream=entry.upstream,
                id=image.image_id,
                content_hash=image.content_hash,
                size=image.size,
                archive=IMAGES_ARCHIVE,
            )
        )
    return images


def _save_images(
    images: list[definition.ResolvedImage],
    payload: Path,
    state: Path,
    base_image: str,
    prog: progress.Progress,
) -> tuple[definition.ResolvedFile | None, bool]:
    target = payload / IMAGES_ARCHIVE
    marker = state / "images.json"
    if not images:
        target.unlink(missing_ok=True)
        return None, False
    refs = sorted({image.tag for image in images} | {image.upstream for image in images if image.upstream})
    identity = {"refs": refs, "ids": sorted(image.id for image in images)}
    if target.is_file() and marker.is_file():
        saved = json.loads(marker.read_text())
        if saved.get("identity") == identity and saved.get("size") == target.stat().st_size:
            with prog.step(f"save {len(images)} images") as step:
                step.skip("unchanged since the last run; reusing the saved archive")
            return definition.ResolvedFile(path=IMAGES_ARCHIVE, size=saved["size"], sha256=saved["sha256"]), True
    marker.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    # Images built FROM the same base share its layers, which the archive stores once.
    base_info = engine.inspect(base_image)
    shared = base_info.size if base_info is not None else 0
    estimate = max(sum(image.size for image in images) - shared * (len(images) - 1), 1)
    digest = hashlib.sha256()
    with prog.step(f"save {len(images)} images ({', '.join(image.name for image in images)})") as step:
        done = 0

        def advance(chunk: bytes) -> None:
            nonlocal done
            digest.update(chunk)
            done += len(chunk)
            step.update("docker save", completed=done, total=max(estimate, done), unit="B")

        with partial.open("wb") as handle:
            engine.save(refs, handle, advance)
        os.replace(partial, target)
    record = {"identity": identity, "size": target.stat().st_size, "sha256": digest.hexdigest()}
    marker.write_text(json.dumps(record, indent=2) + "\n")
    return definition.ResolvedFile(path=IMAGES_ARCHIVE, size=record["size"], sha256=record["sha256"]), False


def _manifest_sources(spec: definition.Definition, base_dir: Path) -> list[tuple[Path, str]]:
    """(source file, path under manifests/) for every manifest the definition names."""
    found: list[tuple[Path, str]] = []
    for item in spec.manifests:
        path = (base_dir / item).resolve()
        if path.is_file():
            found.append((path, path.name))
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix in MANIFEST_SUFFIXES:
                    found.append((file, f"{path.name}/{file.relative_to(path).as_posix()}"))
        else:
            raise errors.UsageError(
                f"manifest {item} (in {spec.name}) does not exist at {path}",
                hint="manifest paths are relative to the bundle definition file",
            )
    names = [relative for _, relative in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise errors.UsageError(f"two manifests would both be stored as manifests/{duplicates[0]}")
    return found
