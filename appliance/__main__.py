"""`python -m appliance` runs the CLI, for environments where the console script is not on PATH."""

from appliance.cli import main

main.main()
