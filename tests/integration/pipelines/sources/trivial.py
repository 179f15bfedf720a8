"""Three trivial sequential steps: the benchmark's pipeline (docs/benchmarks.md)."""

from kfp import dsl


@dsl.component
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="trivial")
def pipeline(x: int = 1) -> int:
    one = add(a=x, b=1)
    two = add(a=one.output, b=1)
    return add(a=two.output, b=1).output
