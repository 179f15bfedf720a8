"""Synthetic bundles for the unit tests: a few small files packed exactly as `bundle build` packs them,
without Docker (the image archive is just bytes here). `conftest.make_bundle` hands out `make`."""

from __future__ import annotations

import random
import tarfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance.bundle import archive, definition
from appliance.bundle import build as bundle_build

PAYLOAD = {
    "bin/kind": b"\x7fELF pretend kind binary\n" * 100,
    # Half noise (zstd stores it raw), half pattern (zstd compresses it to almost nothing): 1 MiB.
    "images/images.tar": random.Random(0).randbytes(512 * 1024) + bytes(range(256)) * 2048,
    "manifests/platform/namespace.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: opendatahub\n",
}


def record(signed: bool = False) -> definition.Resolved:
    return definition.Resolved(
        name="test",
        version="1.0.0",
        kubernetes="1.34.1",
        kind="v0.30.0",
        created="2026-01-01T00:00:00+00:00",
        builder="odh-appliance test",
        signed=signed,
        images=[
            definition.ResolvedImage(
                name="minio",
                tag="localhost/odh-appliance/minio:abc",
                id="sha256:" + "1" * 64,
                content_hash="2" * 64,
                size=123,
                archive="images/images.tar",
            )
        ],
        binaries=[
            definition.ResolvedBinary(
                name="kind",
                version="v0.30.0",
                source="go install sigs.k8s.io/kind@v0.30.0",
                path="bin/kind",
                size=len(PAYLOAD["bin/kind"]),
                sha256="0" * 64,
            )
        ],
        manifests=[],
        archives=[],
    )


MakeBundle = Callable[..., Path]


def maker(tmp_path: Path) -> MakeBundle:
    """A function that builds a bundle file from PAYLOAD (plus `extra` files), optionally signed with `key`.

    Plain tar by default, so that tests can find a member's bytes and damage exactly one file.
    """

    def make(
        name: str = "test.odhbundle",
        *,
        key: ed25519.Ed25519PrivateKey | None = None,
        extra: dict[str, bytes] | None = None,
        compress: bool = False,
    ) -> Path:
        payload = tmp_path / f"payload-{name}"
        for relative, data in {**PAYLOAD, **(extra or {})}.items():
            path = payload / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        bundle_build.finalize(payload, record(signed=key is not None), key)
        output = tmp_path / name
        archive.pack(payload, archive.staged_files(payload), output, lambda _: None, compress=compress)
        return output

    return make


def member_offset(bundle: Path, member: str) -> int:
    """Where `member`'s data starts inside the tar (to damage it on purpose)."""
    with tarfile.open(bundle) as tar:
        return tar.getmember(member).offset_data


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        value = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([value ^ 0x01]))
