"""Caching: the same component with the same inputs reuses outputs unless caching is off."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component
def mark(log_dir: str, tag: str, out: Output[Dataset]) -> str:
    import os
    import uuid

    open(os.path.join(log_dir, f"{tag}-{uuid.uuid4().hex}"), "w").close()
    with open(out.path, "w") as f:
        f.write(tag)
    return tag


@dsl.component
def consume(data: Input[Dataset]) -> str:
    return open(data.path).read()


@dsl.pipeline(name="caching")
def pipeline(log_dir: str) -> str:
    cached = mark(log_dir=log_dir, tag="cached")
    mark(log_dir=log_dir, tag="uncached").set_caching_options(False)
    return consume(data=cached.outputs["out"]).output
