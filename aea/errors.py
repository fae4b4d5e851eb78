"""The one exception type for mistakes a user can make and fix.

Raise ``AEAError("what is wrong; what to do about it")`` for bad input (missing
dataset, wrong layout, unreadable image, bad parameter, missing weights).  The
CLI prints it as a single line without a traceback; everything else is a bug
and keeps its traceback.
"""


class AEAError(Exception):
    """A user-facing error whose message names the fix, printed as one line."""
