"""One module per `dump` command; `dumpcli.cli` wires them into the app."""
