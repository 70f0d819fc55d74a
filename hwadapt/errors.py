"""The exceptions the CLI turns into a one-line message and a non-zero exit."""
from __future__ import annotations

from device_agents.base import AgentError


class HwadaptError(Exception):
    """A user-facing error: bad input, unusable settings, mismatched table."""


class ArchError(HwadaptError, ValueError):
    """An architecture description that is malformed or inconsistent."""


# what a command reports in one line: hwadapt's own errors and its device agents'
USER_ERRORS: tuple[type[Exception], ...] = (HwadaptError, AgentError)
