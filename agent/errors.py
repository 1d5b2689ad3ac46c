"""User-facing errors: one line, non-zero exit, nothing lost."""


class SealError(Exception):
    """An error the CLI prints as one line (no traceback) before exiting with status 2."""


class BadInput(SealError):
    """A file or argument the user gave cannot be used."""


class StoreError(SealError):
    """The home folder is missing, corrupt, foreign or locked."""


class Cancelled(SealError):
    """A long job was cancelled by the user; nothing was committed."""
