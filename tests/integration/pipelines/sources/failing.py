"""Failures: a task that exits non-zero under an exit handler, retries that succeed or run out."""

from kfp import dsl


@dsl.component
def boom(code: int):
    import sys

    print("about to fail: the disk is full (simulated)")
    sys.exit(code)


@dsl.component
def after(x: int) -> int:
    return x


@dsl.component
def final(status: dsl.PipelineTaskFinalStatus, marker_dir: str):
    import os

    with open(os.path.join(marker_dir, "final"), "w") as f:
        f.write(f"{status.state} {status.pipeline_task_name}")


@dsl.component
def flaky(counter_dir: str, fail_times: int) -> int:
    import os

    path = os.path.join(counter_dir, "attempts")
    n = int(open(path).read()) if os.path.exists(path) else 0
    n += 1
    with open(path, "w") as f:
        f.write(str(n))
    if n <= fail_times:
        print(f"attempt {n} fails on purpose")
        raise SystemExit(3)
    return n


@dsl.pipeline(name="failing")
def pipeline(marker_dir: str, code: int = 3):
    exit_task = final(marker_dir=marker_dir)
    with dsl.ExitHandler(exit_task):
        b = boom(code=code).set_caching_options(False)
        after(x=1).after(b)


@dsl.pipeline(name="retries")
def retries(counter_dir: str, fail_times: int = 2):
    task = flaky(counter_dir=counter_dir, fail_times=fail_times)
    task.set_retry(num_retries=2, backoff_duration="0s").set_caching_options(False)


@dsl.component(packages_to_install=["minio>=7"])
def needs_installed() -> str:
    import minio

    return minio.__version__


@dsl.component(packages_to_install=["surely-not-installed-package==1.0"])
def needs_missing() -> str:
    return "unreachable"


@dsl.pipeline(name="installed-packages")
def installed_packages() -> str:
    return needs_installed().output


@dsl.pipeline(name="missing-packages")
def missing_packages() -> str:
    return needs_missing().output
