"""The `appliance` command line: click commands that call `appliance.api` and render with rich."""
