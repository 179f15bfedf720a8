"""`appliance images ...`: the base image and the platform images, built from package sources.

Registered in `appliance.cli.main`; everything goes through `appliance.api`. `build_options` is shared
with `appliance bundle build`, which builds the images a bundle needs with the same options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from appliance import api
from appliance.cli import render
from appliance.cli.state import State, pass_state

F = TypeVar("F", bound=Callable[..., Any])


def build_options(func: F) -> F:
    """The options of every command that builds images."""
    options = [
        click.option(
            "--ca-bundle",
            metavar="FILE",
            help="PEM CA bundle that pip trusts during builds (TLS-intercepting proxies) "
            "[default: /etc/ssl/certs/ca-certificates.crt when it exists].",
        ),
        click.option("--no-ca-bundle", is_flag=True, help="Pass no CA bundle to builds."),
        click.option(
            "--network",
            default="host",
            show_default=True,
            metavar="MODE",
            help="Network of RUN steps (docker build --network): host, default, none.",
        ),
        click.option(
            "--base-image", metavar="IMAGE", help=f"Build FROM this image [default: {api.DEFAULT_BASE_IMAGE}]."
        ),
        click.option("--no-cache", is_flag=True, help="Rebuild even when an image with the same content hash exists."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def options_from(kwargs: dict[str, Any]) -> Any:
    return api.image_build_options(
        ca_bundle=kwargs.pop("ca_bundle"),
        use_ca_bundle=not kwargs.pop("no_ca_bundle"),
        network=kwargs.pop("network"),
        base_image=kwargs.pop("base_image"),
        no_cache=kwargs.pop("no_cache"),
    )


@click.group()
def images() -> None:
    """Build the container images of the platform from package sources (no registry needed)."""


@images.command("base")
@click.option(
    "--from", "from_image", metavar="IMAGE", help="Use this image (pulled if missing) instead of Debian packages."
)
@click.option("--mirror", metavar="URL", help="Debian mirror for debootstrap [default: debootstrap's].")
@click.option("--rebuild", is_flag=True, help="Run debootstrap again even when a cached root filesystem exists.")
@pass_state
def base(state: State, from_image: str | None, mirror: str | None, rebuild: bool) -> None:
    """Make the Python runtime base image (debootstrap + docker import; needs root).

    Tagged localhost/odh-appliance/base:bookworm-py3.11. The root filesystem is cached, so a removed
    image comes back in seconds. Where a registry is reachable, --from python:3.11-slim works too.
    """
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        result = api.images_base(loaded, api.Progress(live), from_image=from_image, mirror=mirror, rebuild=rebuild)
    state.out.print(f"{result.tag} {result.image_id} ({result.action})", highlight=False)


@images.command("build")
@click.argument("names", nargs=-1)
@build_options
@click.option("--json", "as_json", is_flag=True, help="Print the built images as JSON.")
@pass_state
def build(state: State, /, names: tuple[str, ...], as_json: bool, **kwargs: Any) -> None:
    """Build platform images (all, or the NAMES given) from images/<name>/Dockerfile.

    Tags carry a content hash of the build context, the base image and the build args; an image whose
    tag exists is not built again. Builds the base image first when there is none.
    """
    options = options_from(kwargs)
    loaded = state.load_config()
    with render.LiveSteps(state.err) as live:
        built = api.images_build(loaded, api.Progress(live), list(names), options)
    if as_json:
        click.echo(json.dumps([image.as_dict() for image in built], indent=2))
        return
    table = Table(title="images", title_justify="left")
    for column in ("image", "tag", "size", ""):
        table.add_column(column, overflow="fold")
    for image in built:
        table.add_row(image.name, image.tag, render.human_bytes(image.size), image.action)
    state.out.print(table)


@images.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def list_(state: State, as_json: bool) -> None:
    """List the platform images and their latest local builds."""
    rows = api.images_list()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="platform images", title_justify="left")
    for column in ("image", "latest build", "size", "what"):
        table.add_column(column, overflow="fold")
    for row in rows:
        size = render.human_bytes(row["size"]) if row["size"] else ""
        table.add_row(row["name"], row["tag"] or "(not built)", size, row["summary"])
    state.out.print(table)
