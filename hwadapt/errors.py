"""The one exception family the CLI turns into a one-line message and a non-zero exit."""


class HwadaptError(Exception):
    """A user-facing error: bad input, unusable device, mismatched table."""
