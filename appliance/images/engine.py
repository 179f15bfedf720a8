"""The Docker engine operations the image and bundle code needs, in one place.

Called by `appliance.images.base`, `appliance.images.build` and `appliance.bundle`. Commands that
print text (build, import, tag, inspect, rmi) run the `docker` CLI through `appliance.exec`, so a
failure carries the command and its output. The two operations that move image archives (`save`,
`load`) stream bytes instead, through the Docker SDK: that gives exact byte progress and lets the
caller hash an archive while it is written, without holding gigabytes in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import docker as docker_sdk
import requests

from appliance import errors
from appliance import exec as exec_mod

DOCKER_HINT = "is the Docker engine running? `appliance doctor` checks it"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ImageInfo:
    """What `docker image inspect` says about one local image."""

    id: str
    tags: tuple[str, ...]
    size: int
    labels: dict[str, str]
    repo_digests: tuple[str, ...]
    created: str

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> ImageInfo:
        config = data.get("Config") or {}
        return cls(
            id=str(data["Id"]),
            tags=tuple(data.get("RepoTags") or ()),
            size=int(data.get("Size") or 0),
            labels=dict(config.get("Labels") or {}),
            repo_digests=tuple(data.get("RepoDigests") or ()),
            created=str(data.get("Created") or ""),
        )


def docker(args: Sequence[str], *, timeout: float = 120.0, **kwargs: Any) -> exec_mod.Result:
    return exec_mod.run(["docker", *args], timeout=timeout, hint=kwargs.pop("hint", DOCKER_HINT), **kwargs)


def inspect(ref: str) -> ImageInfo | None:
    """The local image `ref` (a tag or an ID), or None when the engine does not have it."""
    result = exec_mod.run(["docker", "image", "inspect", ref], check=False, hint=DOCKER_HINT)
    if not result.ok:
        if "No such image" in result.stderr or "No such object" in result.stderr:
            return None
        raise exec_mod.ExecError(
            "docker image inspect failed",
            argv=result.argv,
            returncode=result.returncode,
            output=result.stderr,
            hint=DOCKER_HINT,
        )
    data = json.loads(result.stdout)
    return ImageInfo.from_inspect(data[0])


def require(ref: str, hint: str) -> ImageInfo:
    info = inspect(ref)
    if info is None:
        raise errors.ApplianceError(f"image {ref} is not in the local Docker engine", hint=hint)
    return info


def tag(source: str, target: str) -> None:
    docker(["tag", source, target])


def remove(refs: Iterable[str]) -> None:
    refs = list(refs)
    if refs:
        docker(["image", "rm", "--force", *refs], check=False)


def prune_tags(repository: str, pattern: str, keep: Sequence[str], newest: int) -> list[str]:
    """Remove the tags of `repository` that match `pattern` (a regex), except `keep` and the `newest`
    most recent others; an image a container still uses stays (no --force). Returns what was removed."""
    import re  # noqa: PLC0415

    listing = docker(["images", repository, "--format", "{{.CreatedAt}}\t{{.Tag}}"], check=False).stdout
    rows = sorted((line.split("\t") for line in listing.splitlines() if "\t" in line), reverse=True)
    candidates = [tag for _, tag in rows if re.fullmatch(pattern, tag) and tag not in keep]
    doomed = [f"{repository}:{tag}" for tag in candidates[newest:]]
    removed = []
    for ref in doomed:
        if docker(["image", "rm", ref], check=False).ok:
            removed.append(ref)
    return removed


def save(refs: Sequence[str], out: IO[bytes], on_chunk: Callable[[bytes], None]) -> None:
    """Write `docker save refs...` to `out`, calling `on_chunk` for every chunk written."""
    client = _client()
    try:
        stream = client.api.get_image(refs[0]) if len(refs) == 1 else _save_many(client, refs)
        for chunk in stream:
            out.write(chunk)
            on_chunk(chunk)
    except _docker_errors() as exc:
        raise errors.ApplianceError(f"docker save {' '.join(refs)} failed: {exc}", hint=DOCKER_HINT) from exc
    finally:
        client.close()


def load(chunks: Iterator[bytes]) -> list[str]:
    """`docker load` from a stream of archive chunks; returns what the engine reported loading."""
    client = _client()
    try:
        loaded: list[str] = []
        for message in client.api.load_image(chunks):
            if "error" in message:
                raise errors.ApplianceError(f"docker load failed: {message['error']}", hint=DOCKER_HINT)
            stream = str(message.get("stream", "")).strip()
            if stream:
                loaded.append(stream)
        return loaded
    except _docker_errors() as exc:
        raise errors.ApplianceError(f"docker load failed: {exc}", hint=DOCKER_HINT) from exc
    finally:
        client.close()


def _save_many(client: Any, refs: Sequence[str]) -> Iterator[bytes]:
    # docker-py's public get_image takes one name; the engine API (/images/get?names=...) takes many and
    # stores shared layers once, which is what a bundle wants.
    response = client.api._get(client.api._url("/images/get"), params={"names": list(refs)}, stream=True)
    client.api._raise_for_status(response)
    yield from response.iter_content(CHUNK, decode_unicode=False)


def _client() -> Any:
    try:
        return docker_sdk.from_env(timeout=3600)
    except docker_sdk.errors.DockerException as exc:
        raise errors.ApplianceError(f"cannot reach the Docker engine: {exc}", hint=DOCKER_HINT) from exc


def _docker_errors() -> tuple[type[BaseException], ...]:
    return (docker_sdk.errors.DockerException, requests.RequestException)
