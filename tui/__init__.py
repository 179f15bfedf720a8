"""The Textual terminal UI (`appliance tui`, `appliance-tui`): install, overview, storage, models and
workbenches for people who do not know kubectl.

It imports only `appliance.api` (an import-linter contract checks this); `appliance` never imports
Textual, so `appliance tui` starts it as its own process (`python -m tui`). Layout: `app.py` (the
shell: navigation, keys, the lost-cluster banner), `screens/` (one module per screen, registered in
`screens/__init__.py`), `widgets/` (reusable widgets with their DEFAULT_CSS), `app.tcss` (app-level
styles). See docs/tui.md.
"""
