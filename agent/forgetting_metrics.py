"""Continual-learning metrics over a forgetting matrix (pure functions; DESIGN.md §2).

``R`` has T+1 rows and T columns: ``R[0]`` is the model before any edit, ``R[k][i-1]`` the accuracy on document
i (1-based; learned at step i) after k edits. Cells may be ``None`` or NaN (unknown): a metric that needs an
unknown cell skips that term, and is NaN when no term is left.

- ACC = mean_i R[T][i]
- BWT = mean_{i<T} (R[T][i] - R[i][i])                    backward transfer (negative = forgetting)
- FWT = mean_{i>1} (R[i-1][i] - R[0][i])                  forward transfer (what earlier edits taught about i)
- forgetting_j = max_{l<T} R[l][j] - R[T][j]; mean maximum forgetting = mean over j < T
- just-learned accuracy = mean_i R[i][i]
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Sequence
from .util import nanmean

Cell = Optional[float]
Matrix = Sequence[Sequence[Cell]]
NAMES = ("acc", "bwt", "fwt", "forgetting", "just_learned")


@dataclass
class Metrics:
    acc: float
    bwt: float
    fwt: float
    forgetting: float
    just_learned: float

    def to_dict(self) -> dict:
        return asdict(self)


def _val(x: Cell) -> float:
    return math.nan if x is None else float(x)




def check_shape(R: Matrix) -> int:
    """T for a (T+1) x T matrix; ValueError otherwise."""
    T = len(R) - 1
    if T < 1 or any(len(row) != T for row in R):
        raise ValueError(f"a forgetting matrix has T+1 rows of T cells; got {len(R)} rows of "
                         f"{sorted({len(r) for r in R})} cells")
    return T


def cell(R: Matrix, k: int, i: int) -> float:
    """R[k][i] with document i 1-based (NaN when unknown)."""
    return _val(R[k][i - 1])


def acc(R: Matrix) -> float:
    T = check_shape(R)
    return nanmean([cell(R, T, i) for i in range(1, T + 1)])


def bwt(R: Matrix) -> float:
    T = check_shape(R)
    return nanmean([cell(R, T, i) - cell(R, i, i) for i in range(1, T)])


def fwt(R: Matrix) -> float:
    T = check_shape(R)
    return nanmean([cell(R, i - 1, i) - cell(R, 0, i) for i in range(2, T + 1)])


def forgetting_per_doc(R: Matrix) -> list[float]:
    """forgetting_j = max_{l<T} R[l][j] - R[T][j] for j = 1..T-1 (unknown cells left out of the max)."""
    T = check_shape(R)
    out = []
    for j in range(1, T):
        seen = [cell(R, l, j) for l in range(T) if not math.isnan(cell(R, l, j))]
        out.append(max(seen) - cell(R, T, j) if seen else math.nan)
    return out


def mean_forgetting(R: Matrix) -> float:
    return nanmean(forgetting_per_doc(R))


def just_learned(R: Matrix) -> float:
    T = check_shape(R)
    return nanmean([cell(R, i, i) for i in range(1, T + 1)])


def metrics(R: Matrix) -> Metrics:
    """ACC, BWT, FWT, mean maximum forgetting and just-learned accuracy of one matrix."""
    return Metrics(acc(R), bwt(R), fwt(R), mean_forgetting(R), just_learned(R))


def with_unknown_start(rows: Matrix) -> list[list[Cell]]:
    """Rows after edits 1..T (a store's history has no row before the first edit) -> a (T+1) x T matrix."""
    T = len(rows)
    return [[None] * T] + [list(r) for r in rows]


def perplexity_drift(ppl_before: float, ppl_after: float) -> float:
    """Relative change of general-text perplexity: +0.03 = 3% worse than before any edit."""
    return ppl_after / ppl_before - 1.0 if ppl_before and not math.isnan(ppl_before) else math.nan


def mean_std(values: Sequence[float]) -> dict:
    """Mean and sample standard deviation (std 0 for one value), NaNs left out; n = values used."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not kept:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    m = sum(kept) / len(kept)
    var = sum((x - m) ** 2 for x in kept) / (len(kept) - 1) if len(kept) > 1 else 0.0
    return {"mean": m, "std": math.sqrt(var), "n": len(kept)}


def mean_matrix(mats: Sequence[Matrix]) -> list[list[float]]:
    """Cell-wise mean over runs (unknown cells left out)."""
    if not mats:
        return []
    rows, cols = len(mats[0]), len(mats[0][0])
    return [[nanmean([_val(m[k][i]) for m in mats]) for i in range(cols)] for k in range(rows)]
