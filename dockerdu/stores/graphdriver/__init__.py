"""The graphdriver store: `image/<driver>/` and the driver's dir, one row per driver in `drivers.py`."""
