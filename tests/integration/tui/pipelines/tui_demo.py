"""Pipelines the TUI tests (and the tmux e2e) run: every parameter type with a default, a Dataset CSV,
a Markdown report and Metrics as artifacts; and one whose only task exits 3."""

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Metrics, Output


@dsl.component
def make_data(rows: int, data: Output[Dataset], report: Output[Markdown], metrics: Output[Metrics]) -> int:
    with open(data.path, "w") as f:
        f.write("x,y\n")
        for i in range(rows):
            f.write(f"{i},{i * i}\n")
    with open(report.path, "w") as f:
        f.write(f"# Report\n\n{rows} rows of squares\n")
    metrics.log_metric("rows", rows)
    print(f"made {rows} rows")
    return rows


@dsl.component
def greet(greeting: str, n: int, scale: float, loud: bool, tags: list) -> str:
    text = f"{greeting} x{n} scale={scale} tags={','.join(tags)}"
    text = text.upper() if loud else text
    print(text)
    return text


@dsl.pipeline(name="tui-demo")
def pipeline(rows: int = 3, greeting: str = "hello", scale: float = 0.5, loud: bool = False, tags: list = ["a", "b"]):
    made = make_data(rows=rows)
    greet(greeting=greeting, n=made.outputs["Output"], scale=scale, loud=loud, tags=tags)


@dsl.component
def boom(code: int):
    import sys

    print("about to fail: the disk is full (simulated)")
    sys.exit(code)


@dsl.pipeline(name="tui-failing")
def failing(code: int = 3):
    boom(code=code).set_caching_options(False)
