"""Parameters of every type, defaults and optional inputs, artifacts of several types, a container
component with placeholders, a nested pipeline used as a component, an importer, dsl.OneOf."""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Markdown, Model, Output


@dsl.component
def describe(s: str, i: int, f: float, b: bool, xs: list, d: dict, opt: Optional[str] = None, dflt: int = 7) -> str:
    import json

    return json.dumps({"s": s, "i": i, "f": f, "b": b, "xs": xs, "d": d, "opt": opt, "dflt": dflt}, sort_keys=True)


@dsl.container_component
def shout(text: str, out: Output[Dataset], n: dsl.OutputPath(int)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'printf "%s!" "$0" > "$1" && printf 3 > "$2"'],
        args=[text, out.path, n],
    )


@dsl.component
def read(
    data: Input[Dataset], n: int, report: Output[Markdown], page: Output[HTML], cm: Output[ClassificationMetrics]
) -> str:
    text = open(data.path).read()
    with open(report.path, "w") as f:
        f.write(f"# {text}")
    with open(page.path, "w") as f:
        f.write(f"<p>{text}</p>")
    cm.log_confusion_matrix(["a", "b"], [[2, 0], [1, 3]])
    return f"{text}x{n}"


@dsl.pipeline
def inner(text: str) -> NamedTuple("Outputs", [("data", Dataset), ("n", int)]):
    Outputs = NamedTuple("Outputs", [("data", Dataset), ("n", int)])
    t = shout(text=text)
    return Outputs(data=t.outputs["out"], n=t.outputs["n"])


@dsl.component
def echo(text: str) -> str:
    return text


@dsl.component
def save_dir(n: int, model: Output[Model]):
    import os

    os.makedirs(os.path.join(model.path, "weights"))
    for i in range(n):
        with open(os.path.join(model.path, "weights", f"w{i}.txt"), "w") as f:
            f.write(str(i))
    with open(os.path.join(model.path, "config.json"), "w") as f:
        f.write(f'{{"n": {n}}}')


@dsl.component
def list_dir(model: Input[Model]) -> list:
    import os

    return sorted(
        os.path.relpath(os.path.join(root, name), model.path)
        for root, _, names in os.walk(model.path)
        for name in names
    )


@dsl.component
def from_env() -> str:
    import os

    return os.environ["GREETING"]


@dsl.component
def read_imported(data: Input[Dataset]) -> str:
    return open(data.path).read() + "@" + data.uri


@dsl.pipeline(name="params")
def pipeline(
    s: str,
    data_uri: str,
    i: int = 2,
    f: float = 0.5,
    b: bool = False,
    xs: list = [1, 2],
    d: dict = {"k": "v"},
    flip: str = "heads",
) -> str:
    describe(s=s, i=i, f=f, b=b, xs=xs, d=d)
    nested = inner(text=s)
    read(data=nested.outputs["data"], n=nested.outputs["n"])
    c = echo(text=flip)
    with dsl.If(c.output == "heads"):
        heads = echo(text="H")
    with dsl.Else():
        tails = echo(text="T")
    picked = echo(text=dsl.OneOf(heads.output, tails.output))
    imported = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset)
    read_imported(data=imported.output)
    from_env().set_env_variable("GREETING", "hola").set_cpu_limit("1").set_memory_limit("1G")
    saved = save_dir(n=i)
    list_dir(model=saved.outputs["model"])
    with dsl.ParallelFor(xs) as x:
        echo(text=x)
    return picked.output
