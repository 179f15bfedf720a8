"""The storage screen against a real MinIO (tests/conftest.py::minio_server): buckets and objects,
the `/` filter, upload and download through the dialogs with live byte progress, describe, delete
with confirmation, and the one-line error (with hint) for what MinIO refuses."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from appliance import api
from tests.conftest import MinioServer
from tests.integration.tui.conftest import drive, make_app, notes, screen_text, type_text, until
from tui.screens.dialogs import ConfirmDialog, FormDialog, TextViewer
from tui.screens.storage import StorageScreen
from tui.widgets.resource_table import ResourceTable
from tui.widgets.steps import StepList

pytestmark = pytest.mark.integration


@pytest.fixture
def target(minio_server: MinioServer) -> api.StorageTarget:
    return api.storage_target_for(minio_server.url, minio_server.access_key, minio_server.secret_key)


@pytest.fixture
def bucket(target: api.StorageTarget, tmp_path: Path) -> str:
    """A fresh bucket with three small objects."""
    name = "tui-" + secrets.token_hex(4)
    api.storage_make_bucket(target, name)
    for key, text in (("a/train.csv", "x,y\n1,2\n"), ("a/test.csv", "x,y\n3,4\n"), ("readme.txt", "hello")):
        source = tmp_path / "seed"
        source.write_text(text)
        api.storage_upload(target, name, key, source, api.Progress())
    return name


def storage(pilot: Pilot[None]) -> StorageScreen:
    screen = pilot.app.screen
    assert isinstance(screen, StorageScreen)
    return screen


async def open_bucket(pilot: Pilot[None], bucket: str) -> StorageScreen:
    screen = storage(pilot)
    await until(pilot, lambda: bucket in screen.buckets_table.visible_keys(), "the bucket list")
    screen.buckets_table.select_key(bucket)
    screen.buckets_table.focus()
    await pilot.press("enter")
    await until(pilot, lambda: len(screen.objects_table.visible_keys()) == 3, "the objects")
    return screen


def test_lists_filters_describes(target: api.StorageTarget, bucket: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_bucket(pilot, bucket)
        assert screen.objects_table.visible_keys() == ["a/test.csv", "a/train.csv", "readme.txt"]
        assert "a/train.csv" in screen_text(pilot.app)
        await pilot.press("slash")
        await type_text(pilot, "csv !test")
        assert screen.objects_table.visible_keys() == ["a/train.csv"]
        assert "[filter: csv !test] 1/3" in (screen.objects_table.border_title or "")
        await pilot.press("enter")  # keep the filter, back to the table
        assert screen.focused is screen.objects_table
        await pilot.press("d")
        viewer = await until(pilot, lambda: isinstance(pilot.app.screen, TextViewer) and pilot.app.screen, "describe")
        assert "x,y\n1,2" in viewer.text
        await pilot.press("escape")
        assert pilot.app.screen is screen
        await pilot.press("slash", "escape")  # esc in the filter clears it
        await until(pilot, lambda: len(screen.objects_table.visible_keys()) == 3, "the filter to clear")

    drive(make_app(initial="storage", storage=target), scenario)


def test_upload_download_delete(target: api.StorageTarget, bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "upload.bin"
    local.write_bytes(secrets.token_bytes(3 * 1024 * 1024 + 17))
    back = tmp_path / "back.bin"

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_bucket(pilot, bucket)
        await pilot.press("u")
        dialog = await until(pilot, lambda: isinstance(pilot.app.screen, FormDialog) and pilot.app.screen, "upload")
        dialog.query_one("#field-path", Input).value = str(local)
        dialog.query_one("#field-key", Input).value = "blobs/upload.bin"
        dialog.query_one("#field-key", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: "blobs/upload.bin" in screen.objects_table.visible_keys(), "the uploaded object")
        steps = screen.query_one("#transfers", StepList)
        assert [e.state for e in steps.steps.values()] == ["done"]
        assert "✓ upload upload.bin to " in screen_text(pilot.app)

        screen.objects_table.select_key("blobs/upload.bin")
        screen.objects_table.focus()
        await pilot.press("g")
        dialog = await until(pilot, lambda: isinstance(pilot.app.screen, FormDialog) and pilot.app.screen, "download")
        dialog.query_one("#field-dest", Input).value = str(back)
        dialog.query_one("#field-dest", Input).focus()
        await pilot.press("enter")
        await until(pilot, back.exists, "the downloaded file")

        await pilot.press("ctrl+d")
        confirm = await until(
            pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog) and pilot.app.screen, "confirm"
        )
        assert "blobs/upload.bin" in confirm.question
        await pilot.press("n")  # no: nothing happens
        assert "blobs/upload.bin" in screen.objects_table.visible_keys()
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "confirm again")
        await pilot.press("y")
        await until(pilot, lambda: "blobs/upload.bin" not in screen.objects_table.visible_keys(), "the deletion")

    drive(make_app(initial="storage", storage=target), scenario)
    assert back.read_bytes() == local.read_bytes()
    assert "blobs/upload.bin" not in [o.key for o in api.storage_objects(target, bucket)]


def test_refusals_are_one_line_with_a_hint(target: api.StorageTarget, bucket: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_bucket(pilot, bucket)
        screen.buckets_table.focus()
        await pilot.press("ctrl+d", "y")  # the bucket still has objects
        await until(pilot, lambda: any("BucketNotEmpty" in n for n in notes(pilot.app)), "the refusal")
        note = next(n for n in notes(pilot.app) if "BucketNotEmpty" in n)
        assert "hint: delete its objects first" in note
        assert "Traceback" not in note
        assert bucket in [b.name for b in api.storage_buckets(target)]

    drive(make_app(initial="storage", storage=target), scenario)


def test_wrong_credentials(minio_server: MinioServer) -> None:
    wrong = api.storage_target_for(minio_server.url, minio_server.access_key, "not-the-secret")

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: any("SignatureDoesNotMatch" in n for n in notes(pilot.app)), "the error")
        assert any("hint: the credentials do not match" in n for n in notes(pilot.app))
        assert storage(pilot).query_one("#buckets", ResourceTable).row_count == 0

    drive(make_app(initial="storage", storage=wrong), scenario)
