"""Loops over a task output (parallelism limit) and over a static list, dsl.Collected, artifacts with
metadata, Metrics, dsl.If/Elif/Else on a NamedTuple output, an exit handler, a retry policy."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component
def make_numbers(count: int, data: Output[Dataset]) -> list:
    with open(data.path, "w") as f:
        f.write(",".join(str(i) for i in range(count)))
    data.metadata["count"] = count
    return list(range(count))


@dsl.component
def square(x: int) -> int:
    return x * x


@dsl.component
def total(values: list[int], data: Input[Dataset], model: Output[Model], metrics: Output[Metrics]) -> NamedTuple(
    "Out", [("sum", int), ("label", str)]
):
    from collections import namedtuple

    text = open(data.path).read()
    s = sum(values)
    with open(model.path, "w") as f:
        f.write(f"model of {text}")
    metrics.log_metric("sum", s)
    return namedtuple("Out", ["sum", "label"])(s, "big" if s > 10 else "small")


@dsl.component
def report(msg: str, flag: bool = True, ratio: float = 0.5, opt: str = "") -> str:
    return f"{msg}/{flag}/{ratio}/{opt}"


@dsl.component
def cleanup(status: dsl.PipelineTaskFinalStatus) -> str:
    return status.state


@dsl.pipeline(name="features")
def pipeline(count: int = 4, greeting: str = "hi"):
    exit_task = cleanup()
    with dsl.ExitHandler(exit_task):
        nums = make_numbers(count=count)
        with dsl.ParallelFor(nums.outputs["Output"], parallelism=2) as item:
            sq = square(x=item)
        t = total(values=dsl.Collected(sq.output), data=nums.outputs["data"])
        with dsl.If(t.outputs["sum"] > 10):
            report(msg=t.outputs["label"])
        with dsl.Elif(t.outputs["sum"] > 1):
            report(msg="mid", flag=False)
        with dsl.Else():
            report(msg=greeting, ratio=1.5)
        with dsl.ParallelFor([1, 2, 3]) as s:
            square(x=s).set_caching_options(False).set_retry(num_retries=2, backoff_duration="0s")
