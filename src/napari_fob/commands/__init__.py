"""Subcommands of the ``fob`` tool: one module each, with HELP, add_arguments and run."""
