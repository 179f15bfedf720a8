"""Artifact stores: where a run's artifacts live, and how a task moves them in and out.

Used by `engine` (to name each output artifact's URI under the pipeline root) and by `launcher`
(to download inputs before a task runs and upload outputs after it). Two kinds of pipeline root:

- `s3://bucket/prefix` or `minio://bucket/prefix`: an S3 API (MinIO) through the `minio` client.
  URIs are what KFP passes (`minio://bucket/key` or `s3://bucket/key`), and a task sees the file at
  KFP's local mount path (`/minio/bucket/key`, `/s3/bucket/key`) under a mount root that is `/` in
  a pod and a scratch directory locally. Credentials come from the environment with the keys of an
  ODH data connection: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_S3_ENDPOINT, AWS_DEFAULT_REGION.
- a local directory: URIs are absolute paths (as `kfp.local` does); nothing moves.

Only the standard library and `minio` are imported: this module runs inside task processes.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.pipelines import errors

REMOTE_PREFIXES = {"minio://": "minio", "s3://": "s3", "gs://": "gcs"}
ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_S3_ENDPOINT", "AWS_DEFAULT_REGION")


def is_remote(uri: str) -> bool:
    return uri.startswith(tuple(REMOTE_PREFIXES))


def local_path(uri: str, mount_root: str) -> str:
    """Where a task finds an artifact: KFP's convention (`minio://b/k` → `<mount>/minio/b/k`)."""
    for prefix, mount in REMOTE_PREFIXES.items():
        if uri.startswith(prefix):
            return posixpath.join(mount_root, mount, uri[len(prefix) :])
    return uri


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` → ("bucket", "a/b")."""
    for prefix in REMOTE_PREFIXES:
        if uri.startswith(prefix):
            bucket, _, key = uri[len(prefix) :].partition("/")
            return bucket, key.strip("/")
    raise ValueError(f"not an object-store URI: {uri}")


def join(root: str, *parts: str) -> str:
    clean = [p.strip("/") for p in parts if p.strip("/")]
    return "/".join([root.rstrip("/"), *clean]) if is_remote(root) else str(Path(root, *clean))


@dataclass(frozen=True)
class S3Settings:
    endpoint: str  # host:port
    secure: bool
    access_key: str
    secret_key: str
    region: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        missing = [k for k in ENV_KEYS[:3] if not env.get(k)]
        if missing:
            raise errors.RuntimeUnavailable(
                f"an s3:// pipeline root needs {', '.join(missing)} in the environment",
                hint="set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_S3_ENDPOINT (an ODH data connection's "
                "keys), or use a local directory as --pipeline-root",
            )
        endpoint = env["AWS_S3_ENDPOINT"]
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        return cls(
            endpoint=parsed.netloc,
            secure=parsed.scheme == "https",
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            region=env.get("AWS_DEFAULT_REGION") or None,
        )


class Store:
    """Moves artifacts between a task's local paths and the pipeline root."""

    def __init__(self, root: str, env: Mapping[str, str] | None = None) -> None:
        self.root = root.rstrip("/") if is_remote(root) else str(Path(root).resolve())
        self._env = dict(os.environ if env is None else env)
        self._client: Any = None

    @property
    def remote(self) -> bool:
        return is_remote(self.root)

    def client(self) -> Any:
        if self._client is None:
            import certifi  # noqa: PLC0415 - only remote roots need these, and they cost import time
            import minio  # noqa: PLC0415
            import urllib3  # noqa: PLC0415

            settings = S3Settings.from_env(self._env)
            # Bounded: 10 s to connect, 5 min per read, 3 retries with a short backoff (minio's default
            # client retries for half a minute before a wrong endpoint is reported).
            http = urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=10, read=300),
                retries=urllib3.Retry(total=3, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._env.get("SSL_CERT_FILE") or certifi.where(),
            )
            self._client = minio.Minio(
                settings.endpoint,
                access_key=settings.access_key,
                secret_key=settings.secret_key,
                secure=settings.secure,
                region=settings.region,
                http_client=http,
            )
        return self._client

    def ensure_bucket(self) -> None:
        """Fail early, with a hint, when the bucket of the pipeline root is missing or unreachable."""
        if not self.remote:
            try:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise errors.RuntimeUnavailable(
                    f"cannot use {self.root} as the pipeline root: {exc.strerror}",
                    hint="pass --pipeline-root with a writable directory or an s3://bucket/prefix",
                ) from exc
            return
        bucket, _ = split_uri(self.root)
        client = self.client()  # missing credentials: its own error
        try:
            exists = client.bucket_exists(bucket)
        except Exception as exc:
            raise errors.RuntimeUnavailable(
                f"cannot reach the object store for {self.root}: {type(exc).__name__}: {exc}",
                hint="check AWS_S3_ENDPOINT and the credentials (`appliance credentials` shows MinIO's)",
            ) from exc
        if not exists:
            self.client().make_bucket(bucket)

    def upload(self, local: str | Path, uri: str) -> int:
        """Upload a file, or every file under a directory, to `uri`; returns the bytes sent."""
        local = Path(local)
        if not local.exists():
            return 0
        if not is_remote(uri):  # a directory root: the file is already there, unless written elsewhere
            target = Path(uri)
            if local.resolve() == target.resolve():
                return 0
            target.parent.mkdir(parents=True, exist_ok=True)
            if local.is_dir():
                shutil.copytree(local, target, dirs_exist_ok=True)
            else:
                shutil.copy2(local, target)
            return 0
        bucket, key = split_uri(uri)
        if local.is_file():
            self.client().fput_object(bucket, key, str(local))
            return local.stat().st_size
        sent = 0
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            self.client().fput_object(bucket, f"{key}/{path.relative_to(local).as_posix()}", str(path))
            sent += path.stat().st_size
        return sent

    def download(self, uri: str, local: str | Path) -> int:
        """Fetch `uri` (an object, or every object under it as a directory) to `local`."""
        local = Path(local)
        if not is_remote(uri):
            return 0
        from minio import error as minio_error  # noqa: PLC0415

        bucket, key = split_uri(uri)
        client = self.client()
        try:
            stat = client.stat_object(bucket, key)
        except minio_error.S3Error as exc:
            if exc.code not in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                raise
            stat = None
        local.parent.mkdir(parents=True, exist_ok=True)
        if stat is not None:
            _fetch(client, bucket, key, local)
            return int(stat.size or 0)
        received = 0
        for obj in client.list_objects(bucket, prefix=f"{key}/", recursive=True):
            target = local / obj.object_name[len(key) + 1 :]
            _fetch(client, bucket, obj.object_name, target)
            received += int(obj.size or 0)
        if not received and not local.exists():
            local.mkdir(parents=True, exist_ok=True)  # an empty directory artifact
        return received

    def read_text(self, uri: str) -> str:
        """The content of a small artifact (tests, `pipelines get`)."""
        if not is_remote(uri):
            return Path(uri).read_text()
        bucket, key = split_uri(uri)
        response = self.client().get_object(bucket, key)
        try:
            return bytes(response.read()).decode()
        finally:
            response.close()
            response.release_conn()


def _fetch(client: Any, bucket: str, key: str, target: Path) -> None:
    """Download to a name of this thread's own, then rename into place (atomic): tasks running at once
    may fetch the same artifact to the same local path (a collected loop output read by two tasks), and
    the client's own `.part.minio` file is per target name, so two downloads would race on it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    private = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.part")
    try:
        client.fget_object(bucket, key, str(private))
        os.replace(private, target)
    finally:
        private.unlink(missing_ok=True)
