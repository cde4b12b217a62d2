"""`python -m dockerdu`."""

from .cli import main

main()
