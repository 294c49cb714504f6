"""The `corral` command and the glue every service shares (server runner, HTTP error handlers)."""
