"""``python -m permgen`` runs the command line."""

from permgen.cli import main

main()
