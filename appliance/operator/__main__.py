"""`python -m appliance.operator`: run the platform operator (kopf) until SIGTERM.

The operator image's entrypoint. In the pod it uses the service account; `--kubeconfig` runs it on a
developer's machine against any cluster (the CRDs must be installed: `appliance up` does that).
The liveness endpoint (`/healthz`) is what the Deployment's livenessProbe asks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from typing import Any

import kopf

from appliance.operator import gateway_handlers as _gateway  # noqa: F401 - registers on import
from appliance.operator import handlers, install
from appliance.operator import inference_handlers as _serving  # noqa: F401 - registers on import
from appliance.operator import notebook_handlers as _workbenches  # noqa: F401 - registers on import
from appliance.operator import pipelineserver_handlers as _pipelines  # noqa: F401 - registers on import


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m appliance.operator", description=__doc__)
    parser.add_argument("--kubeconfig", help="a kubeconfig file (default: in-cluster, or $KUBECONFIG)")
    parser.add_argument(
        "--liveness",
        default=f"http://0.0.0.0:{install.HEALTH_PORT}/healthz",
        help="liveness endpoint URL ('' for none)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    assert handlers.RECONCILE_INTERVAL > 0  # the handlers module registers itself on import
    # An explicit identity: kopf's default asks the passwd database, which has no entry for the
    # arbitrary UID the pod runs as.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # no line per liveness probe
    identity: Any = f"odh-operator@{socket.gethostname()}/{os.getpid()}"
    asyncio.run(
        kopf.operator(clusterwide=True, standalone=True, identity=identity, liveness_endpoint=args.liveness or None)
    )


if __name__ == "__main__":
    main()
