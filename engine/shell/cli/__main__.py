"""`python -m engine.shell.cli`: the same as the `pies` script."""

from engine.shell.cli import main

main()
