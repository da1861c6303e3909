"""`python -m postroom` runs the CLI."""

from postroom.cli.main import main

main()
