"""The `corral` command: subcommand wiring and `corral up`. Nothing imports this package."""
