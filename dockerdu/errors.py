"""The errors a user can cause or meet, each with a one-sentence message and its own exit code.

Kept apart from the modules that raise them so that the command line can catch them
without importing those modules.
"""


class RootError(Exception):
    """The chosen path is not a readable Docker root; the message is one sentence."""


class UsageError(Exception):
    """A bad option, config file or output path; one sentence (exit code 2)."""


class HistoryError(Exception):
    """The history (or another output file) cannot be read or written; one sentence."""


class Busy(Exception):
    """Another audit holds the lock; one sentence."""


class InUse(Exception):
    """A daemon or another process uses the root, so prune does not act; one sentence."""
