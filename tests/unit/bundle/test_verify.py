"""Verification of synthetic bundles: every file is checked, the first bad one is named."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from appliance import errors, progress
from appliance.bundle import archive, verify
from tests.unit.bundle import synthetic


def check(bundle: Path) -> verify.VerifyResult:
    return verify.verify(bundle, progress.Progress())


def test_a_good_bundle_verifies_and_reports_every_file(make_bundle: synthetic.MakeBundle) -> None:
    result = check(make_bundle())
    assert result.files == len(synthetic.PAYLOAD) + 1  # + bundle.yaml
    assert result.record.name == "test"
    assert not result.signed
    assert set(result.sums) == {*synthetic.PAYLOAD, archive.RECORD}


def test_sha256sums_comes_first_and_members_are_plain_files(make_bundle: synthetic.MakeBundle) -> None:
    with tarfile.open(make_bundle()) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:2]] == [archive.SUMS, archive.RECORD]
    assert all(m.isfile() and m.uid == 0 and m.mtime == 0 for m in members)


def test_packing_is_reproducible(make_bundle: synthetic.MakeBundle) -> None:
    assert make_bundle("a.odhbundle").read_bytes() == make_bundle("b.odhbundle").read_bytes()


@pytest.mark.parametrize("member", [*synthetic.PAYLOAD, archive.RECORD])
def test_one_flipped_byte_names_the_file_it_falls_in(make_bundle: synthetic.MakeBundle, member: str) -> None:
    bundle = make_bundle()
    offset = synthetic.member_offset(bundle, member)
    synthetic.flip_byte(bundle, offset + 5)
    with pytest.raises(archive.BundleDamaged) as caught:
        check(bundle)
    assert caught.value.problem == f"{member} does not match its sha256 in {archive.SUMS}"
    assert str(bundle) in caught.value.message
    assert "nothing was changed" in (caught.value.hint or "")


def test_a_damaged_checksum_list_is_reported(make_bundle: synthetic.MakeBundle) -> None:
    bundle = make_bundle()
    synthetic.flip_byte(bundle, synthetic.member_offset(bundle, archive.SUMS) + 3)
    with pytest.raises(archive.BundleDamaged, match=r"does not match its sha256|is not `<sha256>  <path>`"):
        check(bundle)


def test_a_cut_bundle_names_the_file_it_ends_in(make_bundle: synthetic.MakeBundle, tmp_path: Path) -> None:
    bundle = make_bundle()
    offset = synthetic.member_offset(bundle, "images/images.tar")
    cut = tmp_path / "cut.odhbundle"
    cut.write_bytes(bundle.read_bytes()[: offset + 1000])
    with pytest.raises(archive.BundleDamaged, match=r"images/images\.tar cannot be read back intact"):
        check(cut)


def test_a_bundle_cut_between_files_reports_the_missing_one(make_bundle: synthetic.MakeBundle, tmp_path: Path) -> None:
    bundle = make_bundle()
    with tarfile.open(bundle) as tar:
        last = tar.getmembers()[-1]
    cut = tmp_path / "cut.odhbundle"
    cut.write_bytes(bundle.read_bytes()[: last.offset])
    with pytest.raises(archive.BundleDamaged, match=rf"{last.name} is missing"):
        check(cut)


def test_a_file_not_in_the_checksums_is_refused(make_bundle: synthetic.MakeBundle, tmp_path: Path) -> None:
    bundle = make_bundle()
    extra = tmp_path / "extra.sh"
    extra.write_text("echo surprise\n")
    with tarfile.open(bundle, "a") as tar:
        tar.add(extra, arcname="bin/extra.sh")
    with pytest.raises(archive.BundleDamaged, match=r"bin/extra\.sh is not listed in SHA256SUMS"):
        check(bundle)


def test_links_and_escaping_paths_are_refused(make_bundle: synthetic.MakeBundle) -> None:
    bundle = make_bundle()
    with tarfile.open(bundle, "a") as tar:
        link = tarfile.TarInfo("bin/evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(archive.BundleDamaged, match=r"unexpected archive entry 'bin/evil'"):
        check(bundle)


def test_an_archive_that_does_not_start_with_sha256sums_is_not_a_bundle(tmp_path: Path) -> None:
    other = tmp_path / "other.tar"
    (tmp_path / "hello.txt").write_text("hello\n")
    with tarfile.open(other, "w") as tar:
        tar.add(tmp_path / "hello.txt", arcname="hello.txt")
    with pytest.raises(archive.BundleDamaged, match=r"the first file is hello\.txt, not SHA256SUMS"):
        check(other)


def test_a_file_that_is_no_tar_at_all(tmp_path: Path) -> None:
    junk = tmp_path / "junk.odhbundle"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    with pytest.raises(archive.BundleDamaged, match="not a bundle archive"):
        check(junk)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="does not exist"):
        check(tmp_path / "nope.odhbundle")


def test_progress_counts_every_byte(make_bundle: synthetic.MakeBundle) -> None:
    bundle = make_bundle()
    recorder = progress.Recorder()
    verify.verify(bundle, progress.Progress(recorder))
    completed = [e.completed for e in recorder.events if e.completed is not None]
    assert completed[-1] == bundle.stat().st_size
    assert recorder.final_states() == {f"verify {bundle.name}": "done"}


@pytest.mark.parametrize(
    "path,safe",
    [("bin/kind", True), ("/etc/passwd", False), ("../x", False), ("a/../../x", False), ("a//b", False), (".", False)],
)
def test_safe_paths(path: str, safe: bool) -> None:
    assert archive.is_safe_path(path) is safe


def test_a_compressed_bundle_verifies_and_is_smaller(make_bundle: synthetic.MakeBundle) -> None:
    plain = make_bundle("plain.odhbundle")
    compressed = make_bundle("zstd.odhbundle", compress=True)
    assert compressed.read_bytes()[:4] == archive.ZSTD_MAGIC
    assert compressed.stat().st_size < plain.stat().st_size * 0.7
    assert check(compressed).sums == check(plain).sums
    assert make_bundle("again.odhbundle", compress=True).read_bytes() == compressed.read_bytes()


@pytest.mark.parametrize("where", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_any_flipped_byte_in_a_compressed_bundle_is_caught(make_bundle: synthetic.MakeBundle, where: float) -> None:
    bundle = make_bundle(compress=True)
    synthetic.flip_byte(bundle, int(bundle.stat().st_size * where))
    with pytest.raises(archive.BundleDamaged) as caught:
        check(bundle)
    named = [*synthetic.PAYLOAD, archive.RECORD, archive.SUMS, "not a bundle archive", "unreadable after"]
    assert any(name in caught.value.problem for name in named), caught.value.problem


def test_a_cut_compressed_bundle_is_caught(make_bundle: synthetic.MakeBundle, tmp_path: Path) -> None:
    bundle = make_bundle(compress=True)
    cut = tmp_path / "cut.odhbundle"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    with pytest.raises(archive.BundleDamaged, match=r"images/images\.tar|is missing|unreadable"):
        check(cut)
