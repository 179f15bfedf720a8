"""A task that fails its first attempts, counting them in MinIO: on the cluster every attempt is a new pod,
so the count cannot live in a local file (tests/integration/pipelines/sources/failing.py does that)."""

from kfp import dsl


@dsl.component
def flaky(key: str, fail_times: int) -> int:
    import io
    import os
    import urllib.parse

    from minio import Minio

    url = urllib.parse.urlparse(os.environ["AWS_S3_ENDPOINT"])
    s3 = Minio(
        url.netloc,
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        secure=False,
        region=os.environ.get("AWS_DEFAULT_REGION"),
    )
    try:
        response = s3.get_object("pipelines", key)
        n = int(response.read())
        response.close()
    except Exception:
        n = 0
    n += 1
    s3.put_object("pipelines", key, io.BytesIO(str(n).encode()), len(str(n)))
    if n <= fail_times:
        print(f"attempt {n} fails on purpose", flush=True)
        raise SystemExit(3)
    return n


@dsl.pipeline(name="retries-s3")
def pipeline(key: str, fail_times: int = 2) -> int:
    task = flaky(key=key, fail_times=fail_times)
    task.set_retry(num_retries=2, backoff_duration="0s").set_caching_options(False)
    return task.output
