"""`appliance bundle verify`: check every file of a bundle against `SHA256SUMS`, and its signature.

Called by `appliance.api.bundle_verify`, and by `appliance.bundle.load` before it changes anything.
One sequential pass: `SHA256SUMS` comes first, so each following member is hashed as it streams by.
The first file that differs, is missing or is not listed ends the check with `BundleDamaged`, which
names it. With a public key, the Ed25519 signature over `SHA256SUMS` must match; a bundle whose
`bundle.yaml` says it was signed fails when its signature is missing, even without a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance import progress
from appliance.bundle import archive, definition, sign


@dataclass(frozen=True)
class VerifyResult:
    bundle: Path
    record: definition.Resolved
    files: int
    bytes: int
    signed: bool
    signer: str | None  # the fingerprint of the key that was checked, when one was
    sums: dict[str, str]

    def as_dict(self) -> dict[str, object]:
        return {
            "bundle": str(self.bundle),
            "ok": True,
            "name": self.record.name,
            "version": self.record.version,
            "files": self.files,
            "bytes": self.bytes,
            "signed": self.signed,
            "signature_checked_with": self.signer,
        }


def verify(bundle: Path, prog: progress.Progress, *, public_key: Path | None = None) -> VerifyResult:
    key = sign.load_public(public_key) if public_key is not None else None
    total = bundle.stat().st_size if bundle.is_file() else 0
    with prog.step(f"verify {bundle.name}") as step:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            step.update("sha256 of every file", completed=done, total=total, unit="B")

        result = check_stream(bundle, advance, key)
        step.update(
            f"{result.files} files match SHA256SUMS" + (f", signed by {result.signer}" if result.signer else "")
        )
    return result


def check_stream(
    bundle: Path,
    on_bytes: Callable[[int], None],
    key: ed25519.Ed25519PublicKey | None,
) -> VerifyResult:
    sums: dict[str, str] | None = None
    sums_bytes = b""
    signature: bytes | None = None
    record_text: bytes | None = None
    seen: set[str] = set()
    size = 0
    for member in archive.members(bundle, on_bytes):
        if sums is None:
            if member.name != archive.SUMS:
                raise archive.BundleDamaged(bundle, f"the first file is {member.name}, not {archive.SUMS}")
            sums_bytes = member.stream.read()
            sums = archive.parse_sums(sums_bytes, bundle)
            continue
        if member.name == archive.SIGNATURE and signature is None and not seen:
            signature = member.stream.read()
            continue
        expected = sums.get(member.name)
        if expected is None:
            raise archive.BundleDamaged(bundle, f"{member.name} is not listed in {archive.SUMS}")
        if member.name in seen:
            raise archive.BundleDamaged(bundle, f"{member.name} appears twice")
        digest = hashlib.sha256()
        keep = member.name == archive.RECORD
        kept = bytearray()
        for chunk in member.chunks():
            digest.update(chunk)
            if keep:
                kept += chunk
        if digest.hexdigest() != expected:
            raise archive.BundleDamaged(bundle, f"{member.name} does not match its sha256 in {archive.SUMS}")
        if keep:
            record_text = bytes(kept)
        seen.add(member.name)
        size += member.size
    if sums is None:
        raise archive.BundleDamaged(bundle, "the archive holds no files")
    missing = sorted(set(sums) - seen)
    if missing:
        raise archive.BundleDamaged(bundle, f"{missing[0]} is missing (the archive ends early or is cut)")
    if record_text is None:
        raise archive.BundleDamaged(bundle, f"{archive.RECORD} is missing")
    record = definition.Resolved.from_yaml(record_text.decode("utf-8", errors="replace"), str(bundle))
    if record.signed and signature is None:
        raise sign.SignatureError(
            f"bundle {bundle} was signed, but its {archive.SIGNATURE} has been removed",
            hint="do not use this bundle; get it again from its source",
        )
    signer = None
    if key is not None:
        if signature is None:
            raise sign.SignatureError(
                f"bundle {bundle} is not signed",
                hint="build it with `appliance bundle build --sign KEY`, or drop --key",
            )
        signer = sign.verify(sums_bytes, signature, key)
    return VerifyResult(bundle, record, len(seen), size, signature is not None, signer, sums)
