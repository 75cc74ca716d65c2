"""``python -m inertia ...``: the same command line as the ``inertia`` script."""

from .cli import main

main()
