"""The Textual terminal UI. It imports only `appliance.api` (an import-linter contract checks this);
the screens arrive with the TUI issue.
"""
