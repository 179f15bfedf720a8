"""odh-appliance: Open Data Hub / OpenShift AI as a single-node appliance.

The headless package. The CLI (`appliance.cli`) and the Textual UI (`tui`) both reach it only
through `appliance.api`; import-linter contracts in pyproject.toml keep it that way.
"""

__version__ = "0.1.0"
