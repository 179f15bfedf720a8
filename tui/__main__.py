"""`python -m tui` / `appliance-tui` / `appliance tui`: parse the command line, load the configuration
through `appliance.api`, and run the app. A bad setting ends with `error:`/`hint:` lines, as the CLI's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from appliance import api
from tui import screens
from tui.backends import Backends


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="appliance tui", description="The odh-appliance terminal UI (see docs/tui.md).")
    p.add_argument("--config", metavar="FILE", default=os.environ.get("ODH_APPLIANCE_CONFIG"), help="config file")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[], help="one setting")
    p.add_argument(
        "--screen", default="overview", help="the screen to open: " + ", ".join(s.NAME for s in screens.SCREENS)
    )
    p.add_argument("--model-server", metavar="URL", help="a model server to connect the models screen to")
    p.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="an S3 endpoint to use instead of the cluster's MinIO (keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
    )
    p.add_argument(
        "--pipeline-server",
        metavar="URL",
        help="a pipeline server to use instead of the cluster's (its token from ODH_PIPELINES_TOKEN)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="accepted for symmetry with the CLI")
    return p.parse_args(argv)


def backends_from(args: argparse.Namespace) -> Backends:
    loaded = api.load_config(config_file=args.config, overrides=args.overrides)
    storage = None
    if args.s3_endpoint:
        storage = api.storage_target_for(
            args.s3_endpoint, os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        )
    pipelines = None
    if args.pipeline_server:
        pipelines = api.pipelines_server(loaded, url=args.pipeline_server,
                                         token=os.environ.get(api.PIPELINES_TOKEN_ENV, ""))  # fmt: skip
    return Backends(loaded, config_file=args.config, overrides=tuple(args.overrides), storage=storage,
                    model_server=args.model_server, pipelines=pipelines)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    target = screens.find(args.screen)
    if target is None:
        print(f"error: no screen {args.screen!r}", file=sys.stderr)
        print("hint: one of " + ", ".join(s.NAME for s in screens.SCREENS), file=sys.stderr)
        return 2
    try:
        backends = backends_from(args)
    except api.ApplianceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    from tui.app import ApplianceApp  # noqa: PLC0415 - after the arguments, so --help is quick

    # Library warnings (urllib3's retries while a cluster is down) must not write over the screen;
    # what matters reaches the user as notifications and the banner.
    logging.getLogger().addHandler(logging.NullHandler())
    logging.captureWarnings(True)
    ApplianceApp(backends, initial=target.NAME).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
