"""Pipelines written with the real kfp SDK; the tests compile them with the task Python (.venv-kfp).

These modules import kfp, which is not installed in the appliance's own environment (its pins clash
with ours), so pytest never imports them: `conftest.compile_pipelines` does, in a subprocess.
"""
