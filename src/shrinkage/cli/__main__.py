"""``python -m shrinkage.cli``: the same as the ``shrinkage`` command."""

from shrinkage.cli import main

main()
