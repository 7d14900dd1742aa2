"""``python -m bench.load``: see ``bench.load.cli``."""

from bench.load.cli import main

main()
