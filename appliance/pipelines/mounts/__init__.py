"""A `sitecustomize` that the launcher puts on PYTHONPATH of task subprocesses (see `sitecustomize`)."""
