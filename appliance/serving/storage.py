"""The storage initializer: download a model from `s3://bucket/prefix` (MinIO) into a directory.

KServe runs this step as an init container that fills `/mnt/models`; our model-server image runs it
as `python -m appliance.serving.storage URI DEST`, and `python -m appliance.serving --storage-uri`
runs it before serving. Credentials and endpoint follow both conventions users already have
(DESIGN.md §3):

- KServe's S3 secret annotations become AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL
  (a URL) or S3_ENDPOINT (host:port) with S3_USE_HTTPS, S3_VERIFY_SSL, AWS_DEFAULT_REGION,
  AWS_CA_BUNDLE and awsAnonymousCredential.
- ODH data connections carry AWS_S3_ENDPOINT (a URL) and AWS_S3_BUCKET; with the latter a storage
  path without `s3://bucket/` is read from that bucket.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import minio
import urllib3
from minio import error as minio_error

from appliance.serving import errors

_TRUE = ("1", "true", "yes", "on")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing slash; "" for the whole bucket


@dataclass(frozen=True)
class S3Settings:
    endpoint: str  # host[:port]
    secure: bool
    verify: bool
    region: str | None
    access_key: str | None
    secret_key: str | None
    ca_bundle: str | None


def parse_uri(uri: str, env: Mapping[str, str]) -> S3Location:
    """`s3://bucket/prefix`, or a bare path inside the data connection's AWS_S3_BUCKET."""
    if uri.startswith("s3://"):
        rest = uri[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise errors.StorageError(f"{uri}: no bucket in the storage URI", hint="use s3://BUCKET/PATH")
        return _location(bucket, prefix)
    if "://" not in uri and env.get("AWS_S3_BUCKET"):
        return _location(env["AWS_S3_BUCKET"], uri)
    raise errors.StorageError(
        f"{uri}: unsupported storage URI",
        hint="use s3://BUCKET/PATH (or a path with AWS_S3_BUCKET set by a data connection)",
    )


def _location(bucket: str, prefix: str) -> S3Location:
    if not _BUCKET.fullmatch(bucket):
        raise errors.StorageError(
            f"{bucket!r} is not a valid S3 bucket name",
            hint="bucket names are 3-63 characters: lower-case letters, digits, dots and hyphens",
        )
    return S3Location(bucket, prefix.strip("/"))


def settings_from_env(env: Mapping[str, str]) -> S3Settings:
    """Endpoint and credentials: AWS_ENDPOINT_URL, then S3_ENDPOINT, then AWS_S3_ENDPOINT, then AWS S3."""
    url = env.get("AWS_ENDPOINT_URL") or ""
    if not url and env.get("S3_ENDPOINT"):
        https = env.get("S3_USE_HTTPS", "1").lower() in _TRUE
        url = ("https://" if https else "http://") + env["S3_ENDPOINT"]
    if not url:
        url = env.get("AWS_S3_ENDPOINT") or "https://s3.amazonaws.com"
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.StorageError(f"S3 endpoint {url!r} is not an http(s) URL", hint="set e.g. http://minio:9000")
    anonymous = env.get("awsAnonymousCredential", "").lower() in _TRUE
    if not anonymous and bool(env.get("AWS_ACCESS_KEY_ID")) != bool(env.get("AWS_SECRET_ACCESS_KEY")):
        present = "AWS_ACCESS_KEY_ID" if env.get("AWS_ACCESS_KEY_ID") else "AWS_SECRET_ACCESS_KEY"
        raise errors.StorageError(
            f"{present} is set but its partner is not",
            hint="set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or awsAnonymousCredential=true)",
        )
    return S3Settings(
        endpoint=parts.netloc,
        secure=parts.scheme == "https",
        verify=env.get("S3_VERIFY_SSL", "1").lower() in _TRUE,
        region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
        access_key=None if anonymous else env.get("AWS_ACCESS_KEY_ID") or None,
        secret_key=None if anonymous else env.get("AWS_SECRET_ACCESS_KEY") or None,
        ca_bundle=env.get("AWS_CA_BUNDLE") or None,
    )


def client(settings: S3Settings) -> minio.Minio:
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=120.0),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        cert_reqs="CERT_REQUIRED" if settings.verify else "CERT_NONE",
        ca_certs=settings.ca_bundle,
    )
    return minio.Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
        http_client=http,
        cert_check=settings.verify,
    )


def _target(dest: Path, relative: str) -> Path:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise errors.StorageError(f"refusing object key {relative!r}: it would land outside {dest}")
    return dest.joinpath(*path.parts)


def download(uri: str, dest: Path, env: Mapping[str, str] | None = None) -> list[Path]:
    """Copy every object at or under the URI's prefix into `dest`, keeping relative paths; the files written."""
    env = os.environ if env is None else env
    location = parse_uri(uri, env)
    settings = settings_from_env(env)
    s3 = client(settings)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        if not s3.bucket_exists(location.bucket):
            raise errors.StorageError(
                f"bucket {location.bucket!r} does not exist at {settings.endpoint}",
                hint="check the storage URI and the data connection's bucket",
            )
        # An object whose key is the prefix itself: s3://bucket/models/model.onnx
        if location.prefix:
            single = [
                o for o in s3.list_objects(location.bucket, prefix=location.prefix) if o.object_name == location.prefix
            ]
            if single:
                target = _target(dest, PurePosixPath(location.prefix).name)
                s3.fget_object(location.bucket, location.prefix, str(target))
                return [target]
        folder = f"{location.prefix}/" if location.prefix else ""
        for obj in s3.list_objects(location.bucket, prefix=folder, recursive=True):
            name = obj.object_name or ""
            if obj.is_dir or name.endswith("/"):
                continue
            target = _target(dest, name[len(folder) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.fget_object(location.bucket, name, str(target))
            written.append(target)
    except minio_error.S3Error as exc:
        raise errors.StorageError(
            f"S3 error from {settings.endpoint} for {uri}: {exc.code}: {exc.message}",
            hint=_hint_for(exc.code),
        ) from None
    except (minio_error.MinioException, ValueError) as exc:
        raise errors.StorageError(f"S3 request to {settings.endpoint} failed: {exc}") from None
    except urllib3.exceptions.HTTPError as exc:
        raise errors.StorageError(
            f"cannot reach the S3 endpoint {settings.endpoint}: {exc}",
            hint="check AWS_ENDPOINT_URL / S3_ENDPOINT / AWS_S3_ENDPOINT and S3_USE_HTTPS",
        ) from None
    if not written:
        raise errors.StorageError(f"no objects at {uri}", hint="check the path; upload the model there first")
    return written


def _hint_for(code: str | None) -> str:
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
        return "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the data connection's credentials)"
    if code == "NoSuchBucket":
        return "check the bucket name in the storage URI"
    return "check the storage URI, the endpoint and the credentials"


def main(argv: list[str] | None = None) -> int:
    """`python -m appliance.serving.storage URI DEST`: the storage-initializer entry point."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m appliance.serving.storage s3://BUCKET/PATH DEST_DIR", file=sys.stderr)
        return 2
    try:
        files = download(args[0], Path(args[1]))
    except errors.ApplianceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    print(f"downloaded {len(files)} file(s) from {args[0]} to {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
