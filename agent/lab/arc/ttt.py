"""Test-time-training data from a task's demonstrations, per configuration (after Akyürek et al. and SEAL).

Leave-one-out (and leave-two-out) tasks: each demonstration in turn is the query, the others (all, or all but one)
its demonstrations. Each augmentation a configuration turns on is applied to every grid of every such task (tasks
with a grid over 30x30 are dropped); then each task gets a copy with permuted colours (0 kept; only when some
augmentation is on, as in SEAL) and shuffled demonstrations. Duplicates go, a seeded shuffle keeps at most 250.
A training text is the task's prompt (:func:`~agent.lab.arc.tasks.prompt_text`) followed by the query's output
grid; ``prompt_chars`` gives the prompt's length for training on the output tokens only. SEAL's settings: batch 2,
cosine schedule, learning rate and epochs from the configuration; a configuration needing more than 375 steps is
refused.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

from student.config import TrainSettings
from teacher.arc_config import ArcConfig

from .augment import augment_examples, families, random_colour_map, shuffled
from .tasks import MAX_SIDE, Example, Task, grid_to_text, prompt_text

MAX_EXAMPLES = 250
MAX_STEPS = 375
BATCH_SIZE = 2
LEAVE_OUT = (1, 2)

TTTTask = tuple[tuple[Example, ...], Example]
"""(demonstrations, query with its output)."""


@dataclass
class TTTData:
    """The training texts of one configuration on one task, the settings to train them with, and whether the
    configuration was refused (``refused`` says why; then nothing is trained)."""

    texts: list[str]
    prompt_chars: Optional[list[int]]  # per text (output-only training), None = all tokens
    settings: TrainSettings
    steps: int
    refused: Optional[str] = None
    dropped_long: int = 0  # examples over the token limit, left out
    tasks: list[TTTTask] = field(default_factory=list, repr=False)


def leave_out_tasks(demos: Sequence[Example], n_out: int) -> list[TTTTask]:
    """Each demonstration as the query, with ``n_out - 1`` more left out of its demonstrations (every choice);
    at least one demonstration remains."""
    out = []
    n = len(demos)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for dropped in itertools.combinations(others, n_out - 1):
            keep = tuple(demos[j] for j in others if j not in dropped)
            if keep:
                out.append((keep, demos[i]))
    return out


def _augment(aug, t: TTTTask, max_side: int) -> Optional[TTTTask]:
    grids = augment_examples(aug, t[0] + (t[1],), max_side)
    return None if grids is None else (grids[:-1], grids[-1])


def ttt_tasks(task: Task, config: ArcConfig, seed: int = 0, max_examples: int = MAX_EXAMPLES,
              leave_out: Sequence[int] = LEAVE_OUT, max_side: int = MAX_SIDE) -> list[TTTTask]:
    """The augmented leave-out tasks of ``config`` (deduplicated, seeded shuffle, at most ``max_examples``)."""
    rng = random.Random(seed)
    initial = [t for n in leave_out for t in leave_out_tasks(task.train, n)]
    augs = families(config.use_basic_augmentations, config.use_size_augmentations,
                    config.use_chain_augmentations, config.use_repeat_augmentations)
    pool = list(initial)
    for aug in augs:
        pool.extend(a for a in (_augment(aug, t, max_side) for t in initial) if a is not None)
    pool = list(dict.fromkeys(pool))
    extra = []
    for t in pool:
        if augs:
            t = _augment(random_colour_map(rng), t, max_side) or t
        extra.append((shuffled(t[0], rng), t[1]))
    pool = list(dict.fromkeys(pool + extra))
    rng.shuffle(pool)
    return pool[:max_examples]


def ttt_text(t: TTTTask) -> tuple[str, int]:
    """(training text, prompt length in characters)."""
    prompt = prompt_text(t[0], t[1].input)
    return prompt + grid_to_text(t[1].output), len(prompt)


def train_settings(config: ArcConfig, base: Optional[TrainSettings] = None, seed: int = 0,
                   max_len: int = 8192) -> TrainSettings:
    """``base`` with the configuration's learning rate and epochs, SEAL's batch 2 and cosine schedule."""
    base = base or TrainSettings()
    return replace(base, lr=config.learning_rate, epochs=config.num_train_epochs, batch_size=BATCH_SIZE,
                   schedule="cosine", seed=seed, max_len=max_len)


def ttt_data(task: Task, config: ArcConfig, base: Optional[TrainSettings] = None, seed: int = 0,
             count_tokens: Optional[Callable[[str], int]] = None, max_len: int = 8192,
             max_examples: int = MAX_EXAMPLES, max_steps: int = MAX_STEPS) -> TTTData:
    """Training texts and settings of ``config`` on ``task``. ``count_tokens`` (text -> tokens, eos included):
    examples longer than ``max_len`` tokens are left out rather than cut (a cut text loses its output)."""
    settings = train_settings(config, base, seed, max_len)
    tasks = ttt_tasks(task, config, seed, max_examples)
    pairs = [ttt_text(t) for t in tasks]
    dropped = 0
    if count_tokens is not None:
        keep = [i for i, (text, _) in enumerate(pairs) if count_tokens(text) <= max_len]
        dropped = len(pairs) - len(keep)
        tasks, pairs = [tasks[i] for i in keep], [pairs[i] for i in keep]
    texts = [p[0] for p in pairs]
    output_only = config.strategy == "train_using_output_tokens"
    steps = math.ceil(len(texts) / settings.batch_size) * settings.epochs
    refused = None
    if not texts:
        refused = "no training example fits"
    elif steps > max_steps:
        refused = f"{steps} steps > {max_steps}"
    return TTTData(texts, [p[1] for p in pairs] if output_only else None, settings, steps, refused, dropped, tasks)
