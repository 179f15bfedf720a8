"""A task that sleeps: timeouts and stopping a run."""

from kfp import dsl


@dsl.component
def sleep(seconds: float) -> str:
    import time

    print("sleeping", flush=True)
    time.sleep(seconds)
    return "woke"


@dsl.pipeline(name="slow")
def pipeline(seconds: float = 60.0) -> str:
    return sleep(seconds=seconds).set_caching_options(False).output
