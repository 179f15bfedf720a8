"""Kubeflow Pipelines v2: run the IR (`schemaVersion: 2.1.0`) that the `kfp` SDK compiles.

`ir` loads and validates a compiled pipeline, `engine` schedules its DAG (conditions, loops, exit
handlers, retries, caching, nested pipelines) over a task backend, `local` is the backend that runs
each task as a local process, and `launcher` is the program that runs ONE task wherever it runs (a
local fork, a subprocess, later a Kubernetes pod). Reached from `appliance.api`.

This package file stays empty: the launcher imports `appliance.pipelines.*` inside task processes,
which must not pay for anything they do not use.
"""
