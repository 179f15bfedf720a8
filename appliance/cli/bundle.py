"""`appliance bundle ...`: build, verify, inspect and load offline bundles; make signing keys.

Registered in `appliance.cli.main`; everything goes through `appliance.api`.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from appliance import api
from appliance.cli import images as images_cli
from appliance.cli import render
from appliance.cli.state import State, pass_state


@click.group()
def bundle() -> None:
    """One verifiable archive of every image, binary and manifest, for hosts without a network."""


@bundle.command("build")
@click.argument("definition", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="The bundle file to write (e.g. default.odhbundle)."
)
@click.option("--sign", "sign_key", metavar="KEY", help="Sign SHA256SUMS with this Ed25519 private key (PEM).")
@click.option("--no-compress", is_flag=True, help="Write a plain tar instead of a zstd-compressed one (3x larger).")
@images_cli.build_options
@pass_state
def build(
    state: State, /, definition: str, output: str, sign_key: str | None, no_compress: bool, **kwargs: Any
) -> None:
    """Build the bundle DEFINITION (e.g. bundles/default.yaml) into one archive.

    Builds or reuses every image and binary it lists, saves the images, writes bundle.yaml and
    SHA256SUMS and packs them. After an interruption, a rerun resumes from the cache.
    """
    options = images_cli.options_from(kwargs)
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        result = api.bundle_build(
            loaded, api.Progress(live), definition, output, options, sign_key=sign_key, compress=not no_compress
        )
    record = result.record
    signed = ", signed" if record.signed else ""
    state.out.print(
        f"{result.output}: {record.name} {record.version}, {len(record.images)} images, "
        f"{len(record.binaries)} binaries, {len(record.manifests)} manifests, {result.files} files, "
        f"{render.human_bytes(result.size)}{signed}",
        highlight=False,
    )


@bundle.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", metavar="PUB", help="Also check the Ed25519 signature with this public key (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def verify(state: State, file: str, key: str | None, as_json: bool) -> None:
    """Check every file of a bundle against SHA256SUMS (and its signature with --key).

    On failure, names the first bad file and exits non-zero.
    """
    with render.LiveSteps(state.err) as live:
        result = api.bundle_verify(file, api.Progress(live), key=key)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    if result.signer:
        signature = f"signature OK (key {result.signer})"
    elif result.signed:
        signature = "signed (pass --key to check the signature)"
    else:
        signature = "not signed"
    state.out.print(
        f"OK: {file}: {result.files} files, {render.human_bytes(result.bytes)} match SHA256SUMS; {signature}",
        highlight=False,
    )


@bundle.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print bundle.yaml and the file list as JSON.")
@pass_state
def inspect(state: State, file: str, as_json: bool) -> None:
    """Show what a bundle holds: versions, images, binaries, manifests, files and sizes (no verification)."""
    contents = api.bundle_inspect(file)
    if as_json:
        click.echo(json.dumps(contents.as_dict(), indent=2))
        return
    record = contents.record
    out = state.out
    out.print(
        f"[bold]{record.name} {record.version}[/]  Kubernetes {record.kubernetes}, kind {record.kind}  "
        f"({render.human_bytes(contents.size)}, {'signed' if contents.signed else 'not signed'})"
    )
    out.print(f"built {record.created} by {record.builder}", style="dim", highlight=False)
    images = Table(title="images", title_justify="left")
    for column in ("name", "tag", "id", "size"):
        images.add_column(column, overflow="fold")
    for image in record.images:
        tag = image.tag + (f"\n= {image.upstream}" if image.upstream else "")
        images.add_row(image.name, tag, image.id.removeprefix("sha256:")[:12], render.human_bytes(image.size))
    out.print(images)
    if record.binaries:
        binaries = Table(title="binaries", title_justify="left")
        for column in ("name", "version", "source", "size"):
            binaries.add_column(column)
        for binary in record.binaries:
            binaries.add_row(binary.name, binary.version, binary.source, render.human_bytes(binary.size))
        out.print(binaries)
    files = Table(title="files", title_justify="left")
    files.add_column("path")
    files.add_column("size", justify="right")
    for path, size in contents.files:
        files.add_row(path, render.human_bytes(size))
    out.print(files)


@bundle.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", metavar="PUB", help="Require a valid Ed25519 signature by this public key (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Print what was loaded as JSON.")
@pass_state
def load(state: State, file: str, key: str | None, as_json: bool) -> None:
    """Verify a bundle, then load its images into Docker and install its binaries.

    A bundle that fails verification is refused before anything changes.
    """
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        result = api.bundle_load(loaded, file, api.Progress(live), key=key)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    state.out.print(
        f"loaded {result.record.name} {result.record.version}: {len(result.images)} images, "
        f"{len(result.binaries)} binaries in {result.binaries[0].parent if result.binaries else '-'}",
        highlight=False,
    )


@bundle.command("keygen")
@click.argument("keyfile", type=click.Path(dir_okay=False))
@pass_state
def keygen(state: State, keyfile: str) -> None:
    """Create an Ed25519 key pair for signing bundles: KEYFILE (private, mode 0600) and KEYFILE.pub."""
    pair = api.bundle_keygen(keyfile)
    state.out.print(f"private key: {pair.private}\npublic key:  {pair.public}\nfingerprint: {pair.fingerprint}")
