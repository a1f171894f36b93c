"""``python -m aeos``: the same as the ``aeos`` console script."""

from aeos.cli import main

main()
