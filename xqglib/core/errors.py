"""Errors a user can act on: shown as one clear message, not a traceback."""


class UserError(Exception):
    """An expected failure (missing file, bad option) whose message says what to do."""
