"""Ed25519 signatures over a bundle's `SHA256SUMS`, with the `cryptography` library.

Called by `appliance.bundle.build` (`--sign KEY`), `appliance.bundle.verify` (`--key PUB`) and
`appliance bundle keygen`. Signing the checksum list signs every file it lists. Keys are PEM files:
PKCS#8 for the private key (written mode 0600), SubjectPublicKeyInfo for the public key.

`SHA256SUMS.sig` is one line of text: `ed25519 <key fingerprint> <base64 signature>`. The fingerprint
(first 16 hex digits of the sha256 of the raw public key) lets verify say *which* key signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance import errors

ALGORITHM = "ed25519"


class SignatureError(errors.ApplianceError):
    """A bundle signature is missing, malformed, from another key, or does not match."""


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    fingerprint: str


def fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(private_path: Path) -> KeyPair:
    """Write a new key pair: `private_path` (0600) and `private_path` + `.pub`. Never overwrites."""
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise errors.UsageError(f"{path} already exists", hint="choose another name or move the old key away")
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public = private.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return KeyPair(private_path, public_path, fingerprint(public))


def load_private(path: Path) -> ed25519.Ed25519PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise errors.UsageError(
            f"{path} is not an unencrypted PEM private key ({exc})",
            hint="create one with `appliance bundle keygen KEYFILE`",
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise errors.UsageError(
            f"{path} is not an Ed25519 key", hint="create one with `appliance bundle keygen KEYFILE`"
        )
    return key


def load_public(path: Path) -> ed25519.Ed25519PublicKey:
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise errors.UsageError(
            f"{path} is not a PEM public key ({exc})", hint="pass the .pub file written by `appliance bundle keygen`"
        ) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise errors.UsageError(f"{path} is not an Ed25519 public key", hint="pass the .pub file of `bundle keygen`")
    return key


def sign(data: bytes, key: ed25519.Ed25519PrivateKey) -> bytes:
    """The text of `SHA256SUMS.sig` for `data` (the bytes of SHA256SUMS)."""
    signature = base64.b64encode(key.sign(data)).decode()
    return f"{ALGORITHM} {fingerprint(key.public_key())} {signature}\n".encode()


def verify(data: bytes, signature_file: bytes, key: ed25519.Ed25519PublicKey) -> str:
    """Check `signature_file` over `data` with `key`; returns the fingerprint, raises `SignatureError`."""
    parts = signature_file.decode("ascii", errors="replace").split()
    if len(parts) != 3 or parts[0] != ALGORITHM:
        raise SignatureError(
            "SHA256SUMS.sig is malformed", hint="the bundle is damaged or was not signed by odh-appliance"
        )
    signer, encoded = parts[1], parts[2]
    mine = fingerprint(key)
    if signer != mine:
        raise SignatureError(
            f"the bundle is signed by key {signer}, not by the given key {mine}",
            hint="pass the public key of whoever built the bundle",
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
        key.verify(raw, data)
    except (binascii.Error, InvalidSignature):
        raise SignatureError(
            "the signature does not match SHA256SUMS: the bundle was changed after it was signed",
            hint="do not use this bundle; get it again from its source",
        ) from None
    return mine


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise errors.UsageError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise errors.UsageError(f"cannot read {what} {path}: {exc}") from None
