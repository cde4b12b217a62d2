"""`python -m dockerdu`."""

from .fastcli import main

main()
