"""The one error type users see: `RlpostError` carries a one-line, actionable message.

The CLI prints ``error: <message>`` and exits 2 instead of a traceback.
"""


class RlpostError(Exception):
    """A user-facing error: bad config, missing model, too little memory, unknown name."""
