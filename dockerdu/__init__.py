"""dockerdu: where the disk under Docker's data root went, and what can safely go."""

__version__ = "0.1.0"
