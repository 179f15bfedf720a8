"""`python -m appliance.pipelines TASK.json`: the pipeline-runner image's entry point runs one task.

The same as `python -m appliance.pipelines.launcher TASK.json` (see `launcher`): what a task pod will
run once the Kubernetes backend exists.
"""

from __future__ import annotations

import sys

from appliance.pipelines import launcher

if __name__ == "__main__":
    sys.exit(launcher.main())
