"""`python -m postroom` runs the CLI."""

from postroom.cli.main import main

if __name__ == "__main__":  # not when a worker process (parse pool) imports the main module
    main()
