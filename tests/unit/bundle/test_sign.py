"""Ed25519 signatures over SHA256SUMS: keys, signing, and every way a check can fail."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from appliance import errors, progress
from appliance.bundle import archive, sign, verify
from tests.unit.bundle import synthetic


@pytest.fixture
def keypair(tmp_path: Path) -> sign.KeyPair:
    return sign.generate(tmp_path / "keys" / "bundle.key")


def test_keygen_writes_a_private_key_only_its_owner_can_read(keypair: sign.KeyPair) -> None:
    assert stat.S_IMODE(keypair.private.stat().st_mode) == 0o600
    assert keypair.public.name == "bundle.key.pub"
    assert b"BEGIN PRIVATE KEY" in keypair.private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in keypair.public.read_bytes()
    assert sign.fingerprint(sign.load_public(keypair.public)) == keypair.fingerprint


def test_keygen_never_overwrites(keypair: sign.KeyPair) -> None:
    with pytest.raises(errors.UsageError, match="already exists"):
        sign.generate(keypair.private)


def test_a_signed_bundle_verifies_with_its_public_key(make_bundle: synthetic.MakeBundle, keypair: sign.KeyPair) -> None:
    bundle = make_bundle(key=sign.load_private(keypair.private))
    result = verify.verify(bundle, progress.Progress(), public_key=keypair.public)
    assert result.signed
    assert result.signer == keypair.fingerprint
    # Without a key the checksums are still checked and the signature is reported, not checked.
    unchecked = verify.verify(bundle, progress.Progress())
    assert unchecked.signed and unchecked.signer is None


def test_another_key_is_named(make_bundle: synthetic.MakeBundle, keypair: sign.KeyPair, tmp_path: Path) -> None:
    other = sign.generate(tmp_path / "other.key")
    bundle = make_bundle(key=sign.load_private(keypair.private))
    with pytest.raises(sign.SignatureError, match=f"signed by key {keypair.fingerprint}, not by the given key"):
        verify.verify(bundle, progress.Progress(), public_key=other.public)


def test_a_forged_signature_fails(make_bundle: synthetic.MakeBundle, keypair: sign.KeyPair) -> None:
    bundle = make_bundle(key=sign.load_private(keypair.private))
    # Damage the signature itself (its base64 part): the checksums still match, the signature does not.
    offset = synthetic.member_offset(bundle, archive.SIGNATURE) + len(f"ed25519 {keypair.fingerprint} ") + 4
    synthetic.flip_byte(bundle, offset)
    with pytest.raises(sign.SignatureError, match="does not match SHA256SUMS"):
        verify.verify(bundle, progress.Progress(), public_key=keypair.public)


def test_signature_over_changed_checksums_fails() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signature = sign.sign(b"abc  bin/kind\n", key)
    sign.verify(b"abc  bin/kind\n", signature, key.public_key())
    with pytest.raises(sign.SignatureError, match="changed after it was signed"):
        sign.verify(b"abd  bin/kind\n", signature, key.public_key())


def test_an_unsigned_bundle_fails_when_a_key_is_required(
    make_bundle: synthetic.MakeBundle, keypair: sign.KeyPair
) -> None:
    with pytest.raises(sign.SignatureError, match="is not signed"):
        verify.verify(make_bundle(), progress.Progress(), public_key=keypair.public)


def test_a_removed_signature_is_noticed_without_a_key(
    make_bundle: synthetic.MakeBundle, keypair: sign.KeyPair, tmp_path: Path
) -> None:
    bundle = make_bundle(key=sign.load_private(keypair.private))
    stripped = tmp_path / "stripped.odhbundle"
    with tarfile.open(bundle) as source, tarfile.open(stripped, "w", format=tarfile.PAX_FORMAT) as target:
        for member in source.getmembers():
            if member.name != archive.SIGNATURE:
                target.addfile(member, source.extractfile(member))
    with pytest.raises(sign.SignatureError, match="SHA256SUMS.sig has been removed"):
        verify.verify(stripped, progress.Progress())


def test_keys_of_another_kind_are_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / "ec.key"
    private.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = tmp_path / "ec.pub"
    public.write_bytes(
        ec_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(errors.UsageError, match="is not an Ed25519 key"):
        sign.load_private(private)
    with pytest.raises(errors.UsageError, match="is not an Ed25519 public key"):
        sign.load_public(public)


def test_garbage_and_missing_key_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(errors.UsageError, match="is not an unencrypted PEM private key"):
        sign.load_private(garbage)
    with pytest.raises(errors.UsageError, match="is not a PEM public key"):
        sign.load_public(garbage)
    with pytest.raises(errors.UsageError, match="does not exist"):
        sign.load_public(tmp_path / "absent.pub")
