"""The expected failures of pipelines: bad IR, bad run-time parameters, a task that cannot start.

Raised by `ir`, `engine` and `local`; the CLI prints them as `error:`/`hint:` (appliance.cli.report).
A task that runs and fails is not an exception: it is a run state (see `runs`).
"""

from __future__ import annotations

from appliance import errors


class PipelineError(errors.ApplianceError):
    """A pipeline cannot be loaded or run as asked."""


class InvalidPipeline(PipelineError, errors.UsageError):
    """The compiled pipeline (IR YAML/JSON) is not something we can run; the message names the field."""


class InvalidParameter(PipelineError, errors.UsageError):
    """A run-time parameter is missing, unknown or of the wrong type."""


class RuntimeUnavailable(PipelineError):
    """The Python that runs tasks (with kfp) or the artifact store is not usable."""


class PipelineFailed(PipelineError):
    """The run ended failed; the message names the failing task, its exit code and its log tail."""
