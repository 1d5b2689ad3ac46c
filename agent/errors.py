"""User-facing errors: one line, non-zero exit, nothing lost."""


class SealError(Exception):
    """An error the CLI prints as one line (no traceback) before exiting with status 2."""


class BadInput(SealError):
    """A file or argument the user gave cannot be used."""


class StoreError(SealError):
    """The home folder is missing, corrupt, foreign or locked."""


class Cancelled(SealError):
    """A long job was cancelled by the user; nothing was committed."""


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""


_ERRNO_CAUSES = {
    "ENOSPC": "no space left on device (disk full)",
    "EDQUOT": "disk quota exceeded (disk full for this user)",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "EROFS": "read-only file system",
    "ENOTDIR": "a part of the path is not a directory",
    "EISDIR": "is a directory",
    "ELOOP": "too many levels of symbolic links (a symlink loop)",
    "ENOENT": "no such file or directory",
    "ENAMETOOLONG": "file name too long",
    "EIO": "input/output error",
    "EMFILE": "too many open files",
}


def describe(e: BaseException) -> str:
    """Any exception as the one line a user reads: what (the file) and why, without a traceback.

    The project's own errors say themselves; OSErrors name their file and cause (a full disk is said as such);
    chromadb/sqlite errors name the memory store; anything else names its type."""
    import errno as _errno

    if isinstance(e, SealError):
        return _first_line(e) or type(e).__name__
    if isinstance(e, OSError):
        name = _errno.errorcode.get(e.errno or 0, "")
        cause = _ERRNO_CAUSES.get(name) or (e.strerror or _first_line(e) or type(e).__name__)
        where = e.filename if e.filename is not None else ""
        if getattr(e, "filename2", None):
            where = f"{where} -> {e.filename2}"
        return f"{where}: {cause}" if where else cause
    text = _first_line(e)
    if _is_disk_full(text):
        return f"no space left on device (disk full): {text}"
    module = type(e).__module__ or ""
    if module.startswith("chromadb") or module.startswith("sqlite3"):
        return f"the memory store (chroma/ in the home) failed: {type(e).__name__}: {text}"
    if type(e).__name__ in ("SafetensorError", "HeaderTooLarge", "HeaderTooSmall"):
        return f"a weights file is damaged: {text}"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _is_disk_full(text: str) -> bool:
    t = text.lower()
    return "no space left" in t or "database or disk is full" in t or "disk quota" in t
