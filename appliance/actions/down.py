"""`appliance down`: delete the cluster (kind) and the appliance's files for it; with `keep_data`
the persistent-volume directory stays on the host, and the next `up` mounts it again.
"""

from __future__ import annotations

from appliance.actions.context import Context


def run(ctx: Context, *, keep_data: bool = False) -> bool:
    """Returns False when there was nothing to delete."""
    state = ctx.provider.state()
    if not state.exists and not ctx.kubeconfig.parent.exists():
        with ctx.progress.step(f"cluster {ctx.cfg.cluster_name}") as step:
            step.skip("does not exist")
        return False
    ctx.provider.delete(ctx.progress, keep_data=keep_data)
    return True
