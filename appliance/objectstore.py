"""Object storage (MinIO's S3 API) for front ends: buckets, objects, upload, download, delete.

Called by `appliance.api` (the TUI's storage and models screens, later CLI commands). Every function
takes a `Target` — an endpoint URL and credentials — so where MinIO is reached from (the platform
gateway, a port-forward, a test server) is decided in one place above this module
(`api.storage_target`). S3 and connection failures become `ApplianceError`s with a hint; uploads
and downloads report bytes as progress steps (`unit="B"`), so every front end shows them alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import minio
import urllib3
from minio import error as minio_error

from appliance import errors, progress

T = TypeVar("T")
CHUNK = 1024 * 1024
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageError(errors.ApplianceError):
    """The object store refused or could not be reached."""


@dataclass(frozen=True)
class Target:
    """Where the S3 API answers and with which credentials."""

    endpoint: str  # a URL: http://127.0.0.1:8080
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def __repr__(self) -> str:  # the secret never lands in a log or a traceback
        return f"Target(endpoint={self.endpoint!r}, access_key={self.access_key!r}, secret_key='***')"


@dataclass(frozen=True)
class Bucket:
    name: str
    created: datetime | None


@dataclass(frozen=True)
class Object:
    bucket: str
    key: str
    size: int
    modified: datetime | None
    is_dir: bool = False

    @property
    def name(self) -> str:
        """The last path element (a folder keeps its trailing slash)."""
        stripped = self.key.rstrip("/")
        base = stripped.rsplit("/", 1)[-1]
        return base + "/" if self.is_dir else base


def validate_bucket(name: str) -> str:
    if not _BUCKET.fullmatch(name):
        raise errors.UsageError(
            f"{name!r} is not a valid bucket name",
            hint="bucket names are 3-63 characters: lower-case letters, digits, dots and hyphens",
        )
    return name


def validate_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise errors.UsageError(f"{key!r} is not a usable object key", hint="use a relative path such as data/x.csv")
    return key


def client(target: Target) -> minio.Minio:
    parts = urlsplit(target.endpoint if "://" in target.endpoint else "http://" + target.endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.UsageError(
            f"S3 endpoint {target.endpoint!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:9000"
        )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3.0, read=60.0),
        retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
    )
    return minio.Minio(
        parts.netloc,
        access_key=target.access_key,
        secret_key=target.secret_key,
        secure=parts.scheme == "https",
        region=target.region,
        http_client=http,
    )


def _call(target: Target, what: str, fn: Callable[[], T]) -> T:
    """Run one S3 operation; its expected failures become one line with a hint."""
    try:
        return fn()
    except minio_error.S3Error as exc:
        raise StorageError(f"{what}: {exc.code}: {exc.message}", hint=_hint_for(exc.code)) from None
    except minio_error.ServerError as exc:
        raise StorageError(f"{what}: the object store answered HTTP {exc.status_code}", hint=_UNREACHABLE) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageError(
            f"{what}: the object store at {target.endpoint} does not answer ({type(exc).__name__})", hint=_UNREACHABLE
        ) from None


_UNREACHABLE = "is the platform up? `appliance status` shows MinIO; the gateway serves it on ports.http"


def _hint_for(code: str | None) -> str:
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
        return "the credentials do not match this object store (`appliance credentials` shows the right ones)"
    if code == "NoSuchBucket":
        return "create the bucket first, or check its name"
    if code == "NoSuchKey":
        return "the object is gone; refresh the list"
    if code == "BucketNotEmpty":
        return "delete its objects first"
    if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        return "pick another name"
    return "check the endpoint and the credentials"


def buckets(target: Target) -> list[Bucket]:
    s3 = client(target)
    found = _call(target, "list buckets", s3.list_buckets)
    return sorted((Bucket(b.name, b.creation_date) for b in found), key=lambda b: b.name)


def make_bucket(target: Target, name: str) -> None:
    s3 = client(target)
    _call(target, f"create bucket {name}", lambda: s3.make_bucket(validate_bucket(name)))


def remove_bucket(target: Target, name: str) -> None:
    s3 = client(target)
    _call(target, f"delete bucket {name}", lambda: s3.remove_bucket(name))


def objects(target: Target, bucket: str, prefix: str = "", *, recursive: bool = True) -> list[Object]:
    """Objects under `prefix` (all of them, or one level with folders when not `recursive`)."""
    s3 = client(target)

    def listing() -> list[Object]:
        return [
            Object(bucket, o.object_name or "", int(o.size or 0), o.last_modified, bool(o.is_dir))
            for o in s3.list_objects(bucket, prefix=prefix or None, recursive=recursive)
        ]

    return sorted(_call(target, f"list {bucket}/{prefix}", listing), key=lambda o: (not o.is_dir, o.key))


def stat(target: Target, bucket: str, key: str) -> Object:
    s3 = client(target)
    info = _call(target, f"stat {bucket}/{key}", lambda: s3.stat_object(bucket, key))
    return Object(bucket, key, int(info.size or 0), info.last_modified)


class _CountingReader:
    """A file reader that reports bytes read to a progress step (minio reads in parts)."""

    def __init__(self, stream: IO[bytes], step: progress.Step, total: int) -> None:
        self.stream, self.step, self.total, self.done = stream, step, total, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.done += len(data)
        self.step.update(completed=self.done, total=self.total, unit="B")
        return data


def upload(target: Target, bucket: str, key: str, path: Path, prog: progress.Progress) -> Object:
    """Put a local file at `bucket/key` (replacing what is there); one progress step counting bytes."""
    validate_key(key)
    if not path.is_file():
        raise errors.UsageError(f"{path} is not a file", hint="give the path of a local file to upload")
    size = path.stat().st_size
    s3 = client(target)
    with prog.step(f"upload {path.name} to {bucket}/{key}") as step, path.open("rb") as stream:
        reader: Any = _CountingReader(stream, step, size)
        _call(target, f"upload {bucket}/{key}", lambda: s3.put_object(bucket, key, reader, length=size))
        step.update(f"{size} bytes")
    return stat(target, bucket, key)


def download(target: Target, bucket: str, key: str, dest: Path, prog: progress.Progress) -> Path:
    """Copy `bucket/key` to `dest` (a file, or a directory to put it in); returns the file written."""
    path = dest / key.rsplit("/", 1)[-1] if dest.is_dir() else dest
    s3 = client(target)
    with prog.step(f"download {bucket}/{key} to {path}") as step:
        size = stat(target, bucket, key).size
        partial = path.with_name(path.name + ".part")

        def copy() -> None:
            response = s3.get_object(bucket, key)
            try:
                done = 0
                with partial.open("wb") as out:
                    for chunk in _chunks(response):
                        out.write(chunk)
                        done += len(chunk)
                        step.update(completed=done, total=size, unit="B")
            finally:
                response.close()
                response.release_conn()

        try:
            _call(target, f"download {bucket}/{key}", copy)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def _chunks(response: Any) -> Iterator[bytes]:
    yield from response.stream(CHUNK)


def remove(target: Target, bucket: str, key: str) -> None:
    s3 = client(target)
    _call(target, f"delete {bucket}/{key}", lambda: s3.remove_object(bucket, key))


def read(target: Target, bucket: str, key: str, limit: int = 64 * 1024) -> bytes:
    """The first `limit` bytes of an object (for a preview)."""
    s3 = client(target)

    def get() -> bytes:
        response = s3.get_object(bucket, key, length=limit)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    return _call(target, f"read {bucket}/{key}", get)
