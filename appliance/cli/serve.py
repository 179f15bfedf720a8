"""`appliance serve MODEL`: run the model server locally, the same one the cluster runs.

Calls `appliance.api.serve`, prints the endpoints once the model is loaded, and serves until Ctrl-C,
which stops it cleanly (exit 0, no traceback).
"""

from __future__ import annotations

import click

from appliance import api
from appliance.cli.state import State, pass_state


@click.command()
@click.argument("model", type=click.Path(path_type=str))
@click.option("--name", help="Serve the model under this name [default: the file's stem].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--http-port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="REST port.")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=8081, show_default=True, help="gRPC port.")
@click.option("--no-grpc", is_flag=True, help="Serve REST only.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@pass_state
def serve(
    state: State,
    model: str,
    name: str | None,
    host: str,
    http_port: int,
    grpc_port: int,
    no_grpc: bool,
    workers: int,
) -> None:
    """Serve an ONNX model over the Open Inference Protocol (KServe V2), REST and gRPC.

    MODEL is a .onnx file or a model directory (model.onnx, or versioned 1/model.onnx, or one
    subdirectory per model). Stop it with Ctrl-C.
    """

    def ready(endpoints: api.ServeEndpoints) -> None:
        models = ", ".join(endpoints.models)
        state.out.print(f"[green]✓[/] serving {models} ({endpoints.workers} worker(s))", highlight=False)
        state.out.print(f"  REST  {endpoints.http}/v2/models/{endpoints.models[0]}/infer", highlight=False)
        if endpoints.grpc:
            state.out.print(f"  gRPC  {endpoints.grpc}  (inference.GRPCInferenceService)", highlight=False)
        state.out.print(f"  metrics {endpoints.http}/metrics", highlight=False)
        state.out.print("Press Ctrl-C to stop.", style="dim", highlight=False)

    state.out.print(f"loading {model} ...", style="dim", highlight=False)
    api.serve(
        model,
        name=name,
        host=host,
        http_port=http_port,
        grpc_port=None if no_grpc else grpc_port,
        workers=workers,
        on_ready=ready,
    )
    state.out.print("stopped", highlight=False)
