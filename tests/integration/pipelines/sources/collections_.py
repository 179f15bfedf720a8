"""Nested loops, dsl.Collected artifacts, a loop over artifacts (artifactIterator) inside a nested
pipeline, lists of artifacts as inputs, f-string inputs and dsl.PIPELINE_*_PLACEHOLDER values."""

from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component
def echo(text: str) -> str:
    return text


@dsl.component
def make(i: int, j: int, out: Output[Dataset]):
    with open(out.path, "w") as f:
        f.write(f"{i}.{j}")


@dsl.component
def read_all(ds: Input[List[Dataset]]) -> str:
    return ",".join(sorted(open(d.path).read() for d in ds))


@dsl.component
def read_one(d: Input[Dataset]) -> str:
    return open(d.path).read()


@dsl.pipeline
def loop_over(ds: Input[List[Dataset]]) -> List[str]:
    with dsl.ParallelFor(ds) as d:
        r = read_one(d=d)
    return dsl.Collected(r.output)


@dsl.component
def records() -> list:
    return [{"label": "a", "size": 1}, {"label": "b", "size": 5}, {"label": "c", "size": 9}]


@dsl.component
def describe(name: str, size: int) -> str:
    return f"{name}={size}"


@dsl.pipeline(name="collections")
def pipeline(who: str = "you"):
    with dsl.ParallelFor(records().output, parallelism=1) as rec:
        with dsl.If(rec.label != "a"):  # struct fields compare as in KFP (a number field with `> 2` fails there too)
            describe(name=rec.label, size=rec.size)
    echo(text=f"hello {who} from {dsl.PIPELINE_JOB_NAME_PLACEHOLDER}")
    echo(text=dsl.PIPELINE_TASK_NAME_PLACEHOLDER)
    with dsl.ParallelFor([1, 2]) as i:
        with dsl.ParallelFor([10, 20]) as j:
            m = make(i=i, j=j)
    read_all(ds=dsl.Collected(m.outputs["out"]))
    loop_over(ds=dsl.Collected(m.outputs["out"]))


@dsl.component
def custom_path(out: Output[Dataset]):
    import os
    import tempfile

    elsewhere = os.path.join(tempfile.mkdtemp(), "data.txt")
    with open(elsewhere, "w") as f:
        f.write("written elsewhere")
    out.path = elsewhere


@dsl.pipeline(name="custom-path")
def custom_path_pipeline():
    read_one(d=custom_path().outputs["out"])
