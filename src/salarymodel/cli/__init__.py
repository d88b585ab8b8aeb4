"""The command line: the Typer app and its terminal output."""
