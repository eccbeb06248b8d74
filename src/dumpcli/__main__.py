from dumpcli.cli import run

run()
