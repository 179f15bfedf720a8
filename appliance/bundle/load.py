"""`appliance bundle load`: verify a bundle, then put its contents where the appliance uses them.

Called by `appliance.api.bundle_load`. Verification comes first and reads the whole archive; a bundle
that fails it is refused before anything changes. Then a second pass streams the archive again:
- image archives go to the local Docker engine (`docker load`); each image must then be present
  under its tag with exactly the ID `bundle.yaml` records (the cluster issue adds kind nodes);
- binaries are installed into the appliance's bin directory (`Paths.bin_dir`);
- `bundle.yaml` and the manifests are kept under `<data>/bundles/<name>/<version>/`.
Every member is hashed again on the way, so a file changed between the two passes is caught too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance import errors, progress
from appliance.bundle import archive, definition, verify
from appliance.images import catalog, engine


@dataclass(frozen=True)
class LoadResult:
    bundle: Path
    record: definition.Resolved
    images: list[str] = field(default_factory=list)
    binaries: list[Path] = field(default_factory=list)
    content_dir: Path | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "bundle": str(self.bundle),
            "name": self.record.name,
            "version": self.record.version,
            "images": self.images,
            "binaries": [str(p) for p in self.binaries],
            "content_dir": str(self.content_dir) if self.content_dir else None,
        }


def load(
    bundle: Path,
    bin_dir: Path,
    data_dir: Path,
    prog: progress.Progress,
    *,
    public_key: Path | None = None,
) -> LoadResult:
    checked = verify.verify(bundle, prog, public_key=public_key)
    record = checked.record
    sums = checked.sums
    content_dir = data_dir / "bundles" / record.name / record.version
    staging = content_dir.with_name(content_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    installed: list[Path] = []
    total = bundle.stat().st_size
    with prog.step(f"load {bundle.name}") as step:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            step.update(completed=done, total=total, unit="B")

        for member in archive.members(bundle, advance):
            if member.name in archive.HEADER_FILES:
                continue
            expected = sums[member.name]
            digest = hashlib.sha256()
            if member.name.startswith("images/"):
                step.update(f"docker load {member.name}")
                engine.load(_hashing(member.chunks(), digest))
                _check(bundle, member.name, digest, expected)
            elif member.name.startswith("bin/"):
                step.update(f"install {member.name}")
                installed.append(_install_binary(bundle, member, bin_dir, digest, expected))
            else:
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as handle:
                    for chunk in _hashing(member.chunks(), digest):
                        handle.write(chunk)
                _check(bundle, member.name, digest, expected)
        step.update(f"{len(record.images)} images, {len(installed)} binaries")
    shutil.rmtree(content_dir, ignore_errors=True)
    staging.rename(content_dir)
    with prog.step("check the loaded images") as step:
        for image in record.images:
            info = engine.inspect(image.tag)
            if info is None or info.id != image.id:
                found = "missing" if info is None else f"has ID {info.id}"
                raise errors.ApplianceError(
                    f"after docker load, {image.tag} is {found}, not {image.id}",
                    hint="another image may have taken the tag meanwhile; run `appliance bundle load` again",
                )
            # The bundle's images become the platform's current ones: `up` installs `<repository>:latest`.
            if image.name in catalog.CATALOG:
                engine.tag(image.tag, f"{image.tag.rpartition(':')[0]}:latest")
        step.update(", ".join(image.tag for image in record.images) or "no images")
    return LoadResult(bundle, record, [image.tag for image in record.images], installed, content_dir)


def _hashing(chunks: Iterator[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _check(bundle: Path, name: str, digest: hashlib._Hash, expected: str) -> None:
    if digest.hexdigest() != expected:
        raise archive.BundleDamaged(bundle, f"{name} changed while it was being loaded")


def _install_binary(bundle: Path, member: archive.Member, bin_dir: Path, digest: hashlib._Hash, expected: str) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / Path(member.name).name
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as handle:
        for chunk in _hashing(member.chunks(), digest):
            handle.write(chunk)
    if digest.hexdigest() != expected:
        partial.unlink()
        _check(bundle, member.name, digest, expected)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target
