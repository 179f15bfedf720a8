"""`python -m appliance.serving`: the model-server image's entry point.

Arguments are parsed here, in `main`, never at import. Flags accept KServe's spellings
(`--model_dir`, `--model_name`, `--http_port`, `--grpc_port`) next to ours, and fall back to
environment variables (MODEL_DIR, MODEL_NAME, HTTP_PORT, GRPC_PORT, STORAGE_URI, WORKERS, HOST).
With a storage URI the model is downloaded into the model directory first (the storage initializer).
The default host is 127.0.0.1 (DESIGN.md §7); a container passes `--host 0.0.0.0`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from appliance import errors
from appliance.serving import server, storage


def parse(argv: list[str], env: Mapping[str, str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m appliance.serving", description="Open Inference Protocol model server")
    p.add_argument(
        "--model-dir", "--model_dir", default=env.get("MODEL_DIR", "/mnt/models"), help="model file or directory"
    )
    p.add_argument("--model-name", "--model_name", default=env.get("MODEL_NAME"), help="name to serve the model under")
    p.add_argument("--host", default=env.get("HOST", "127.0.0.1"))
    p.add_argument("--http-port", "--http_port", type=int, default=int(env.get("HTTP_PORT", "8080")))
    p.add_argument("--grpc-port", "--grpc_port", type=int, default=int(env.get("GRPC_PORT", "8081")))
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument("--workers", type=int, default=int(env.get("WORKERS", "1")))
    p.add_argument("--max-body-mb", type=int, default=int(env.get("MAX_BODY_MB", "64")))
    p.add_argument("--intra-op-threads", type=int, default=int(env.get("INTRA_OP_THREADS", "0")) or None)
    p.add_argument("--body-timeout", type=float, default=float(env.get("BODY_TIMEOUT", "30")), help="seconds")
    p.add_argument("--storage-uri", "--storage_uri", default=env.get("STORAGE_URI"), help="download s3://... first")
    p.add_argument("--log-level", default=env.get("LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv, os.environ)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("appliance.serving")
    try:
        model_dir = Path(args.model_dir)
        if args.storage_uri:
            files = storage.download(args.storage_uri, model_dir)
            log.info("downloaded %d file(s) from %s to %s", len(files), args.storage_uri, model_dir)
        options = server.Options(
            model_path=model_dir,
            name=args.model_name,
            host=args.host,
            http_port=args.http_port,
            grpc_port=None if args.no_grpc else args.grpc_port,
            workers=args.workers,
            max_body_bytes=args.max_body_mb * server.MiB,
            body_timeout=args.body_timeout,
            intra_op_threads=args.intra_op_threads,
        )

        def ready(endpoints: server.Endpoints) -> None:
            log.info(
                "serving %s: REST %s, gRPC %s, %d worker(s)",
                ", ".join(endpoints.models),
                endpoints.http,
                endpoints.grpc or "off",
                endpoints.workers,
            )
            print(f"ready: {endpoints.http} {endpoints.grpc or ''}".strip(), flush=True)

        server.serve(options, ready)
    except errors.ApplianceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
