"""Grid augmentations for test-time training and augmented prediction (after Akyürek et al. and the ARChitects).

Every augmentation maps a grid to a grid and has ``invert``: the geometric ones (the dihedral group: rotations,
flips, transposes) are bijections on all grids and serve prediction (predict on the augmented task, map the answer
back). Size augmentations (upscaling, tiling) are invertible only on their own images: ``invert`` gives None for a
grid that is not one. A chain applies its parts in order and inverts them in reverse. Colour maps keep 0 (the
background) and permute 1-9. Grids larger than 30x30 are never produced by :func:`augment_examples`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .tasks import MAX_SIDE, Example, Grid, shape

GridFn = Callable[[Grid], Grid]


def _rot90(g: Grid) -> Grid:  # counter-clockwise (numpy's rot90)
    return tuple(zip(*g))[::-1]


def _rot270(g: Grid) -> Grid:  # clockwise
    return tuple(zip(*g[::-1]))


def _rot180(g: Grid) -> Grid:
    return tuple(row[::-1] for row in g[::-1])


def _flip_h(g: Grid) -> Grid:  # mirror left-right
    return tuple(row[::-1] for row in g)


def _flip_v(g: Grid) -> Grid:  # mirror top-bottom
    return tuple(g[::-1])


def _transpose(g: Grid) -> Grid:
    return tuple(zip(*g))


def _anti_transpose(g: Grid) -> Grid:  # mirror along the anti-diagonal
    return _rot180(_transpose(g))


def _identity(g: Grid) -> Grid:
    return tuple(tuple(r) for r in g)


class Augmentation:
    """A named grid transform with a (possibly partial) inverse."""

    invertible = False  # a bijection on every grid (usable for augmented prediction); subclasses define ``name``

    def apply(self, grid: Grid) -> Grid:
        raise NotImplementedError

    def invert(self, grid: Grid) -> Optional[Grid]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return str(getattr(self, "name", type(self).__name__))


@dataclass(frozen=True, repr=False)
class Geometric(Augmentation):
    name: str
    fn: GridFn
    inverse: GridFn
    invertible: bool = True

    def apply(self, grid: Grid) -> Grid:
        return self.fn(grid)

    def invert(self, grid: Grid) -> Optional[Grid]:
        return self.inverse(grid)


IDENTITY = Geometric("identity", _identity, _identity)
ROT90 = Geometric("rotate90", _rot90, _rot270)
ROT180 = Geometric("rotate180", _rot180, _rot180)
ROT270 = Geometric("rotate270", _rot270, _rot90)
FLIP_H = Geometric("flip_h", _flip_h, _flip_h)
FLIP_V = Geometric("flip_v", _flip_v, _flip_v)
TRANSPOSE = Geometric("transpose", _transpose, _transpose)
ANTI_TRANSPOSE = Geometric("anti_transpose", _anti_transpose, _anti_transpose)


@dataclass(frozen=True, repr=False)
class Upscale(Augmentation):
    """Each cell becomes a ``fy`` x ``fx`` block (increase resolution / height / width)."""

    fy: int
    fx: int

    @property
    def name(self) -> str:  # type: ignore[override]
        if self.fy == self.fx:
            return f"increase_resolution{self.fy}"
        return f"increase_height{self.fy}" if self.fx == 1 else f"increase_width{self.fx}" if self.fy == 1 \
            else f"upscale{self.fy}x{self.fx}"

    def apply(self, grid: Grid) -> Grid:
        return tuple(tuple(c for c in row for _ in range(self.fx)) for row in grid for _ in range(self.fy))

    def invert(self, grid: Grid) -> Optional[Grid]:
        h, w = shape(grid)
        if h % self.fy or w % self.fx:
            return None
        small = tuple(tuple(grid[i][j] for j in range(0, w, self.fx)) for i in range(0, h, self.fy))
        return small if self.apply(small) == tuple(map(tuple, grid)) else None


@dataclass(frozen=True, repr=False)
class Tile(Augmentation):
    """The grid repeated ``ny`` times down and ``nx`` times across."""

    ny: int
    nx: int

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"repeat{self.ny}x{self.nx}"

    def apply(self, grid: Grid) -> Grid:
        return tuple(tuple(row) * self.nx for _ in range(self.ny) for row in grid)

    def invert(self, grid: Grid) -> Optional[Grid]:
        h, w = shape(grid)
        if h % self.ny or w % self.nx:
            return None
        small = tuple(tuple(row[: w // self.nx]) for row in grid[: h // self.ny])
        return small if self.apply(small) == tuple(map(tuple, grid)) else None


@dataclass(frozen=True, repr=False)
class Chain(Augmentation):
    """``parts`` applied in order; inverted in reverse order (None if a part cannot invert)."""

    parts: tuple[Augmentation, ...]

    @property
    def name(self) -> str:  # type: ignore[override]
        return "+".join(p.name for p in self.parts)

    @property
    def invertible(self) -> bool:  # type: ignore[override]
        return all(p.invertible for p in self.parts)

    def apply(self, grid: Grid) -> Grid:
        for p in self.parts:
            grid = p.apply(grid)
        return grid

    def invert(self, grid: Optional[Grid]) -> Optional[Grid]:
        for p in reversed(self.parts):
            if grid is None:
                return None
            grid = p.invert(grid)
        return grid


@dataclass(frozen=True, repr=False)
class ColourMap(Augmentation):
    """Colour c becomes ``mapping[c]`` (a permutation of 0-9)."""

    mapping: tuple[int, ...]
    invertible: bool = True

    @property
    def name(self) -> str:  # type: ignore[override]
        return "colours" + "".join(map(str, self.mapping))

    def apply(self, grid: Grid) -> Grid:
        return tuple(tuple(self.mapping[c] for c in row) for row in grid)

    def invert(self, grid: Grid) -> Optional[Grid]:
        back = [0] * 10
        for c, m in enumerate(self.mapping):
            back[m] = c
        return tuple(tuple(back[c] for c in row) for row in grid)


def random_colour_map(rng: random.Random, keep_background: bool = True) -> ColourMap:
    """A seeded permutation of the colours; 0 stays 0 when ``keep_background``."""
    first = 1 if keep_background else 0
    rest = list(range(first, 10))
    rng.shuffle(rest)
    return ColourMap(tuple(range(first)) + tuple(rest))


# ------------------------------------------------------------------ families (SEAL's configuration switches)
RES2, HEIGHT2, WIDTH2 = Upscale(2, 2), Upscale(2, 1), Upscale(1, 2)
BASIC: tuple[Augmentation, ...] = (ROT90, ROT180, ROT270, FLIP_H, FLIP_V, TRANSPOSE, ANTI_TRANSPOSE)
SIZE: tuple[Augmentation, ...] = (RES2, HEIGHT2, WIDTH2)
CHAIN: tuple[Augmentation, ...] = tuple(Chain((a, RES2)) for a in (ROT90, ROT270, ROT180, FLIP_V, FLIP_H, TRANSPOSE))
REPEAT: tuple[Augmentation, ...] = (Tile(2, 1), Tile(1, 2), Tile(2, 2))
INVERTIBLE: tuple[Augmentation, ...] = (IDENTITY,) + BASIC
"""The identity first, then the dihedral transforms: what augmented prediction votes over."""


def families(basic: bool, size: bool, chain: bool, repeat: bool) -> list[Augmentation]:
    """The augmentations a configuration turns on, in a fixed order."""
    out: list[Augmentation] = []
    for on, fam in ((basic, BASIC), (size, SIZE), (chain, CHAIN), (repeat, REPEAT)):
        if on:
            out.extend(fam)
    return out


def fits(grid: Grid, max_side: int = MAX_SIDE) -> bool:
    h, w = shape(grid)
    return h <= max_side and w <= max_side


def augment_example(aug: Augmentation, ex: Example) -> Example:
    return Example(aug.apply(ex.input), None if ex.output is None else aug.apply(ex.output))


def augment_examples(aug: Augmentation, examples: Sequence[Example], max_side: int = MAX_SIDE
                     ) -> Optional[tuple[Example, ...]]:
    """``aug`` applied to every input and output; None if a grid would exceed ``max_side``."""
    out = tuple(augment_example(aug, ex) for ex in examples)
    for ex in out:
        if not fits(ex.input, max_side) or (ex.output is not None and not fits(ex.output, max_side)):
            return None
    return out


def shuffled(examples: Sequence[Example], rng: random.Random) -> tuple[Example, ...]:
    """The examples in a seeded random order."""
    out = list(examples)
    rng.shuffle(out)
    return tuple(out)
