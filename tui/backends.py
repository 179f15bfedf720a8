"""What the screens talk to: the configuration and where storage, model servers and the pipeline server answer.

Built once by `tui.__main__` (from the command line) or by a test (with a real MinIO and a real
model server, a local pipeline server on 127.0.0.1), and handed to the app. Endpoints not given explicitly are resolved
through `appliance.api` (the cluster's gateway and credentials) the first time a screen needs them;
that call may fail with an ApplianceError, which the screen shows as a notification.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from appliance import api


@dataclass
class Backends:
    loaded: api.Loaded
    config_file: str | None = None  # what the command line gave, so the install form can add its flags
    overrides: tuple[str, ...] = ()
    storage: api.StorageTarget | None = None  # None: the cluster's MinIO behind the gateway
    model_server: str | None = None  # a model server's REST base URL; None: ask for one on the models screen
    pipelines: api.PipelineServer | None = None  # None: the cluster's, found as the CLI finds it
    watch_cluster: bool = True  # poll the API server for the lost-cluster banner
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def storage_target(self) -> api.StorageTarget:
        """The object store to use (may call the cluster: run it in a worker)."""
        with self._lock:
            if self.storage is None:
                self.storage = api.storage_target(self.loaded)
            return self.storage

    def pipeline_server(self) -> api.PipelineServer:
        """The pipeline server: the given one, else the CLI's way (ODH_PIPELINES_URL/_TOKEN, else the
        cluster's gateway and the token from its Secret). May call the cluster: run it in a worker."""
        with self._lock:
            if self.pipelines is None:
                self.pipelines = api.pipelines_server(self.loaded)
            return self.pipelines
