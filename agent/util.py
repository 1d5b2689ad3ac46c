"""Small helpers every part of the agent shares: the atomic file write and the mean that skips missing values."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, fsync'ed, then a rename: a reader
    sees the old content or the new one, never a part; a failed write leaves the old file and no temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def nanmean(xs: Iterable[Optional[float]]) -> float:
    """Mean of the values that are neither None nor NaN; NaN when none is left."""
    kept = [float(x) for x in xs if x is not None and not math.isnan(float(x))]
    return sum(kept) / len(kept) if kept else math.nan
