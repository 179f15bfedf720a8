"""Synthetic bundles for the unit tests: a few small files packed exactly as `bundle build` packs them,
without Docker (the image archive is just bytes here). `conftest.make_bundle` hands out `make`."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance.bundle import archive, definition
from appliance.bundle import build as bundle_build

PAYLOAD = {
    "bin/kind": b"\x7fELF pretend kind binary\n" * 100,
    "images/images.tar": bytes(range(256)) * 4096,  # 1 MiB
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
    """A function that builds a bundle file from PAYLOAD (plus `extra` files), optionally signed with `key`."""

    def make(
        name: str = "test.odhbundle",
        *,
        key: ed25519.Ed25519PrivateKey | None = None,
        extra: dict[str, bytes] | None = None,
    ) -> Path:
        payload = tmp_path / f"payload-{name}"
        for relative, data in {**PAYLOAD, **(extra or {})}.items():
            path = payload / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        bundle_build.finalize(payload, record(signed=key is not None), key)
        output = tmp_path / name
        archive.pack(payload, archive.staged_files(payload), output, lambda _: None)
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
