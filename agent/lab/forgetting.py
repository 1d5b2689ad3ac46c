"""The forgetting sweep: the student absorbs T documents in order and, after every step, answers every document's
questions (future ones included), giving the full matrix R of DESIGN.md §2 for each replay strategy and update
mode, over several seeded orders.

Update modes: ``continue`` keeps training one knowledge adapter (what ingest does); ``merge`` is SEAL's
sequential setting: after each edit the LoRA delta is added to the base weights in place and a fresh adapter
starts. The base weights are restored from a snapshot before every run, so runs never contaminate each other.
``route``: every document gets its own fresh adapter, and each question (and each general-text paragraph) is
answered by the adapter of the learned document most similar to it, or by the base model when none is similar
enough (agent.router; replay has no role there, so it runs once, as ``route-none``).
Replay: agent.replay (reservoir over the texts absorbed so far in the run; ``mixed`` adds the shipped general
text as a KL anchor to the base model). General-ability drift: perplexity on agent/data/general_eval.txt (never
trained on) after every step.

Outputs in ``out``: run.json (settings; a re-run with other settings is refused), runs.jsonl (one line per
strategy and run, appended as they finish; a re-run skips finished ones), results.json, table.md, PNG plots.
"""
from __future__ import annotations

import dataclasses
import copy
import functools
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from teacher.parsing import parse_completion, passage_text

from ..absorb import Material, absorb, plan, study_pairs
from ..absorb import fingerprint as absorb_fingerprint
from .executor import make_executor
from .forgetting_report import strategy_key, write_outputs
from .runlog import JsonlLog, check_run_file
from .squad import DATA_REF, DEFAULT_DATA, Passage, data_digest, load_passages, load_reference
from ..config import Config
from ..errors import BadInput
from ..models import load_model
from ..events import Emit, Message, Progress, Stage, TrainStep, ignore
from ..replay import REPLAYS, replay_mix

UPDATES = ("continue", "merge", "route")
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
Loader = Callable[[], tuple[Any, Any]]


def general_eval_texts() -> list[str]:
    """The perplexity set (agent/data/general_eval.txt, blank-line separated paragraphs; never trained on)."""
    path = DATA_DIR / "general_eval.txt"
    return [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def default_data() -> Path:
    """SEAL's reference passages shipped for the knowledge benchmark, else the shared SQuAD dev file."""
    shared = Path("/work/shared/data/squad/squad_dev.json")
    return DEFAULT_DATA if DEFAULT_DATA.is_file() or not shared.is_file() else shared


def _split(value: str | Sequence[str], allowed: Sequence[str], flag: str) -> tuple[str, ...]:
    items = [x.strip() for x in (value.split(",") if isinstance(value, str) else value) if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise BadInput(f"{flag} {','.join(items) or '(empty)'}: choose from {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


@dataclass
class SweepOptions:
    data: Optional[Path] = None                 # None = default_data()
    docs: int = 8                               # T
    runs: int = 1                               # orders (seeded shuffles)
    replay: str | Sequence[str] = REPLAYS
    ratio: Optional[float] = None               # replay texts per new text; None = config replay.ratio
    capacity: Optional[int] = None              # None = config replay.capacity
    update: str | Sequence[str] = ("continue",)
    texts: str = "passage"                      # passage | ref[:NAME] (the first reference self-edit + passage)
    out: Optional[Path] = None                  # default runs/forgetting-<timestamp>
    seed: int = 0                               # document choice and orders
    perplexity: bool = True
    route_threshold: float = 0.3                # route: least cosine similarity for a text to use an adapter

    def __post_init__(self) -> None:
        self.replay = _split(self.replay, REPLAYS, "--replay")
        self.update = _split(self.update, UPDATES, "--update")
        if self.docs < 1 or self.runs < 1:
            raise BadInput("--docs and --runs must be at least 1")
        if self.ratio is not None and self.ratio < 0:
            raise BadInput("--replay-ratio must be >= 0")
        if self.capacity is not None and self.capacity < 1:
            raise BadInput("--capacity must be at least 1")
        if not (self.texts == "passage" or self.texts == "ref" or self.texts.startswith("ref:")):
            raise BadInput(f"--texts {self.texts!r}: choose passage or ref[:NAME]")
        if self.out is None:
            self.out = Path("runs") / f"forgetting-{time.strftime('%Y%m%d-%H%M%S')}"
        self.out = Path(self.out)

    def strategies(self) -> list[tuple[str, str]]:
        """(update, replay) pairs, update-major; ``route`` once, without replay (each document has its own adapter)."""
        return [(u, r) for u in self.update for r in (("none",) if u == "route" else self.replay)]


@dataclass
class SweepDoc:
    index: int                                  # position in the data file
    title: str
    questions: list[str]
    golds: list[str]
    texts: list[str]                            # what the student trains on for this document
    passage: str                                # the passage's own text among them ([absorb] lines)
    chunk: str = ""                             # the passage without its title (distill's sentence cues)


@dataclass
class RunResult:
    update: str
    replay: str
    run: int
    order: list[int]                            # data-file indices, in learning order
    R: list[list[float]]                        # (T+1) x T accuracy ('contains'); column i = i-th learned document
    F1: list[list[float]]
    NLL: list[list[float]]                      # mean gold-answer NLL per token (dense; lower = knows it better)
    ppl: list[float]                            # general-text perplexity after k edits (k = 0..T)
    steps: list[int] = field(default_factory=list)
    replayed: list[int] = field(default_factory=list)
    seconds: float = 0.0
    routed_own: list[float] = field(default_factory=list)    # route: share of learned documents' questions sent
    general_to_base: list[float] = field(default_factory=list)  # to their own adapter / general text to the base

    @property
    def key(self) -> tuple:
        return (self.update, self.replay, self.run)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def choose_documents(passages: list[Passage], T: int, seed: int) -> list[Passage]:
    """T passages by a seeded shuffle, from distinct titles while there are enough (topic overlap between
    documents would blur forgetting with transfer)."""
    if T > len(passages):
        raise BadInput(f"--docs {T}: the data has {len(passages)} passages")
    pool = list(passages)
    random.Random(f"forgetting-docs:{seed}").shuffle(pool)
    picked, titles = [], set()
    for p in pool:
        if p.title not in titles:
            picked.append(p)
            titles.add(p.title)
    picked += [p for p in pool if p not in picked]
    return picked[:T]


def run_order(T: int, seed: int, run: int) -> list[int]:
    """Positions 0..T-1 in the order run ``run`` learns them (run 0 of seed s is also shuffled)."""
    order = list(range(T))
    random.Random(f"forgetting-order:{seed}:{run}").shuffle(order)
    return order


class BaseWeights:
    """A snapshot of the base weights under the LoRA layers, to undo merges between runs."""

    def __init__(self, student) -> None:
        self.student = student
        self.saved = {name: layer.get_base_layer().weight.detach().to("cpu", copy=True)
                      for name, layer in lora_layers(student)}

    def restore(self) -> None:
        import torch
        with torch.no_grad():
            for name, layer in lora_layers(self.student):
                w = layer.get_base_layer().weight
                w.copy_(self.saved[name].to(w.device, w.dtype))


def lora_layers(student):
    """(name, peft LoraLayer) pairs of the student's knowledge adapter."""
    from peft.tuners.lora import LoraLayer
    from student.student import ADAPTER_NAME
    for name, module in student.model.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER_NAME in module.lora_A:
            yield name, module


def merge_into_base(student, seed: int) -> None:
    """SEAL's merge-after-each-edit: W += the LoRA delta (peft's get_delta_weight), in place; then a fresh adapter."""
    import torch
    from student.student import ADAPTER_NAME
    with torch.no_grad():
        for _, layer in lora_layers(student):
            w = layer.get_base_layer().weight
            w.add_(layer.get_delta_weight(ADAPTER_NAME).to(w.dtype))
    student.reset(seed)


class ForgettingSweep:
    """Validate with :meth:`prepare` (no model loaded), then :meth:`run`. ``load_student()`` returns
    (model, tokenizer); the default loads the configured student (tests inject tiny ones)."""

    def __init__(self, cfg: Config, opts: SweepOptions, emit: Emit = ignore, load_student: Optional[Loader] = None,
                 embed=None, executor=None):
        self.cfg, self.opts, self.emit = cfg, opts, emit
        # a plain partial, not a bound method: Ray workers receive the loader, not the sweep
        self.load_student = load_student or functools.partial(load_model, cfg.models.student, cfg.home, cfg.models)
        self.executor = executor or make_executor(cfg.run)  # [run] executor: where the runs go (one item each)
        self.embed = embed  # route mode's sentence embedder (default: the memory's MiniLM)
        self._routes = None  # route mode: (router, question vectors, general-text vectors), made on first use
        self.out = Path(opts.out)
        self.docs: list[SweepDoc] = []
        self.ratio = cfg.replay.ratio if opts.ratio is None else opts.ratio
        self.capacity = cfg.replay.capacity if opts.capacity is None else opts.capacity
        self.student = None
        self.device = cfg.models.device
        self.general: list[str] = []
        self.log: Optional[JsonlLog] = None

    # ---- setup ------------------------------------------------------------------------------------------------
    def prepare(self) -> "ForgettingSweep":
        o = self.opts
        data = Path(o.data) if o.data else default_data()
        every = load_passages(data)
        chosen = choose_documents(every, o.docs, o.seed)
        texts = self._texts(chosen)
        self.docs = [SweepDoc(p.index, p.title, list(p.questions), list(p.golds), t,
                              passage_text(p.title, p.context, self.cfg.parse), p.context)
                     for p, t in zip(chosen, texts)]
        self.data, self.digest = data, data_digest(every)
        self.general = general_eval_texts() if o.perplexity else []
        check_run_file(self.out / "run.json", self.fingerprint(), "sweep")
        self.log = JsonlLog(self.out / "runs.jsonl", lambda r: (r["update"], r["replay"], r["run"]))
        return self

    def _texts(self, passages: list[Passage]) -> list[list[str]]:
        if self.opts.texts == "passage":
            return [[p.text] for p in passages]
        name = self.opts.texts.partition(":")[2]
        if not name:
            name = DATA_REF if all(p.completions for p in passages) else "gpt4.1"
        comps, family = load_reference(name, passages)
        out = []
        for p, c in zip(passages, comps):
            texts = parse_completion(c[0], p.title, p.context, family, self.cfg.parse)
            out.append(texts or [p.text])
        return out

    def fingerprint(self) -> dict:
        c, o = self.cfg, self.opts
        return {**absorb_fingerprint(c.absorb, c.train.side_weight),
            "data": self.digest, "docs": [d.index for d in self.docs], "texts": o.texts, "seed": o.seed,
            "ratio": self.ratio, "capacity": self.capacity, "replay_seed": c.replay.seed, "perplexity": o.perplexity,
            "train": dataclasses.asdict(c.train), "lora": dataclasses.asdict(c.lora),
            "answer": dataclasses.asdict(c.answer), "parse": dataclasses.asdict(c.parse),
            "models": {"student": c.models.student, "dtype": c.models.dtype},
            # always recorded (like the replay ratio): strategies run by separate processes share one folder
            "route_threshold": o.route_threshold}

    # ---- measuring ----------------------------------------------------------------------------------------------
    def _questions(self) -> tuple[list[str], list[str]]:
        return [q for d in self.docs for q in d.questions], [g for d in self.docs for g in d.golds]

    def measure(self) -> tuple[list[float], list[float], list[float], float]:
        """Accuracy, F1 and gold-answer NLL per document (data order), and general-text perplexity, now."""
        from student.grading import grade
        s = self.student
        qs, golds = self._questions()
        grades = [grade(a, g) for a, g in zip(s.answer(qs), golds)]
        nlls = s.answer_nll(qs, golds)
        return self._per_doc(grades, nlls) + (math.exp(s.text_nll(self.general)) if self.general else math.nan,)

    def _per_doc(self, grades, nlls) -> tuple[list[float], list[float], list[float]]:
        acc, f1, nll, at = [], [], [], 0
        for d in self.docs:
            n = len(d.questions)
            acc.append(sum(g.contains for g in grades[at:at + n]) / n)
            f1.append(sum(g.f1 for g in grades[at:at + n]) / n)
            nll.append(_nanmean(nlls[at:at + n]))
            at += n
        return acc, f1, nll

    def measure_routed(self, adapters: dict[int, dict]):
        """Route mode's :meth:`measure`: each question and general paragraph is scored under the adapter it is
        routed to (``adapters``: document position -> its adapter state; not routed = the base model). Returns
        measure()'s four values plus the share of learned documents' questions sent to their own adapter and the
        share of general paragraphs sent to the base."""
        from student.grading import grade
        from ..router import Router, default_embedder
        from ..routing import run_routed
        s = self.student
        qs, golds = self._questions()
        if self._routes is None:
            embed = self.embed or default_embedder(self.cfg.models.embedder)
            router = Router(embed, [" ".join(d.texts) for d in self.docs], self.opts.route_threshold)
            self._routes = (router, router.vectors(qs), router.vectors(self.general))
        router, q_vectors, g_vectors = self._routes
        learned = sorted(adapters)
        q_to, g_to = router.pick(q_vectors, learned), router.pick(g_vectors, learned)

        def answer(idx: list[int], base: bool) -> list:
            group_q, group_g = [qs[i] for i in idx], [golds[i] for i in idx]
            return list(zip(s.answer(group_q, base=base), s.answer_nll(group_q, group_g, base=base)))

        def general_nll(idx: list[int], base: bool) -> list:  # one (sum, tokens) per group, kept at its first text
            return [s.text_nll_sum([self.general[i] for i in idx], base=base)] + [(0.0, 0)] * (len(idx) - 1)

        answers, nlls = map(list, zip(*run_routed(s, q_to, adapters.__getitem__, answer))) if qs else ([], [])
        sums = run_routed(s, g_to, adapters.__getitem__, general_nll)
        nll_sum, tokens = sum(t for t, _ in sums), sum(c for _, c in sums)
        owner = [pos for pos, d in enumerate(self.docs) for _ in d.questions]
        own = [t == owner[i] for i, t in enumerate(q_to) if owner[i] in adapters]
        grades = [grade(a, g) for a, g in zip(answers, golds)]
        ppl = math.exp(nll_sum / tokens) if tokens else math.nan
        return (*self._per_doc(grades, nlls), ppl, sum(own) / len(own) if own else math.nan,
                sum(t is None for t in g_to) / len(g_to) if g_to else math.nan)

    # ---- one run ------------------------------------------------------------------------------------------------
    def one_run(self, update: str, replay: str, run: int, base: tuple, done: int, total: int) -> RunResult:
        T, o = len(self.docs), self.opts
        order = run_order(T, o.seed, run)
        pick = lambda row: [row[p] for p in order]  # noqa: E731  data order -> learning order
        acc0, f10, nll0, ppl0 = base
        res = RunResult(update, replay, run, [self.docs[p].index for p in order], [pick(acc0)], [pick(f10)],
                        [pick(nll0)], [ppl0])
        t0 = time.time()
        self.base_weights.restore()
        self.student.reset(self.cfg.train.seed)
        stream: list[str] = []
        label = strategy_key(update, replay)
        adapters: Optional[dict[int, dict]] = {} if update == "route" else None
        for k, pos in enumerate(order, 1):
            doc = self.docs[pos]
            seed = self.cfg.train.seed + 1000 * run + k
            extra = replay_mix(replay, stream, self.capacity, self.ratio, len(doc.texts),
                               self.cfg.replay.seed + 1000 * run + k)
            settings = dataclasses.replace(self.cfg.train, seed=seed)
            if adapters is not None:  # route: a fresh adapter per document
                self.student.reset(seed)
            self.emit(Stage("train", f"{label} run {run + 1} doc {k}/{T}: {len(doc.texts)}+{len(extra.texts)} texts"
                                      + (f", {len(extra.anchor)} anchor" if extra.anchor else "")))
            qa = study_pairs(doc.chunk, [], [], self.cfg.absorb) if self.cfg.absorb.method == "distill" else []
            update = plan([Material(doc.passage, doc.texts, qa)], self.cfg.absorb, settings, self.student.tokenizer,
                          question_format=self.cfg.answer.question_format)  # as ingest trains a document
            result = absorb(self.student, update, extra,
                            on_step=lambda st, tot, ep, loss: self.emit(TrainStep(st, tot, ep, loss)))
            stream.extend(doc.texts)
            if update == "merge":
                merge_into_base(self.student, seed)
            if adapters is not None:
                adapters[pos] = self.student.state()
                acc, f1, nll, ppl, own, to_base = self.measure_routed(adapters)
                res.routed_own.append(own)
                res.general_to_base.append(to_base)
            else:
                acc, f1, nll, ppl = self.measure()
            res.R.append(pick(acc))
            res.F1.append(pick(f1))
            res.NLL.append(pick(nll))
            res.ppl.append(ppl)
            res.steps.append(result.steps)
            res.replayed.append(len(extra.texts))
            self.emit(Progress("forgetting", done + k, total,
                               f"{label} run {run + 1} step {k}: acc {sum(res.R[-1]) / T:.2f}"))
        res.seconds = round(time.time() - t0, 2)
        return res

    # ---- the sweep ----------------------------------------------------------------------------------------------
    def run(self) -> dict:
        o, T = self.opts, len(self.docs)
        todo = [(u, r, run) for u, r in o.strategies() for run in range(o.runs) if (u, r, run) not in self.log]
        t0 = time.time()
        if todo:
            total, done = len(todo) * T, 0
            self.emit(Progress("forgetting", 0, total, f"{len(todo)} run(s) x {T} documents"))
            items = [(update, replay, run, i * T, total) for i, (update, replay, run) in enumerate(todo)]
            for record, device in self.executor.map(SweepJob(self), items):  # one item per strategy x order
                if device != self.device:
                    self.device = device
                    from .report import record_machine
                    record_machine(self.out, device)
                self.log.append(record)  # the driver alone appends: a retried run is written once
                done += T
                self.emit(Progress("forgetting", done, total,
                                   f"{strategy_key(record['update'], record['replay'])} run {record['run'] + 1} done"))
        else:
            self.emit(Message("info", f"{self.out}: every run is already done; rewriting the report"))
        runs = [RunResult(**rec) for rec in self.log]
        return write_outputs(self, runs, time.time() - t0)

    def _setup_student(self) -> None:
        from student.student import Student
        self.emit(Stage("load", f"student model ({self.cfg.models.student})"))
        model, tok = self.load_student()
        self.student = Student(model, tok, self.cfg.lora, self.cfg.answer)
        self.base_weights = BaseWeights(self.student)
        dtype = next(self.student.model.parameters()).dtype
        if "merge" in self.opts.update and str(dtype) != "torch.float32":
            self.emit(Message("warning", f"merge mode adds small LoRA deltas to {dtype} weights, which rounds part of "
                                         "them away; --set models.dtype=float32 measures SEAL's merge faithfully"))


class SweepJob:
    """The sweep's worker: the student loaded and measured before any edit (``setup``), then one whole run per
    item ``(update, replay, run, done, total)``; its result ``(RunResult as a dict, device)``. A Ray worker gets
    a copy of the sweep without its event sink, log or loaded models."""

    def __init__(self, sweep: ForgettingSweep):
        self.sweep = sweep
        self.base = None

    def setup(self) -> None:
        sw = self.sweep
        sw._setup_student()
        sw.emit(Stage("probe", "before any edit", total=None))
        self.base = sw.measure()

    def run(self, item: tuple) -> tuple[dict, str]:
        update, replay, run, done, total = item
        res = self.sweep.one_run(update, replay, run, self.base, done, total)
        self.sweep.base_weights.restore()
        return res.to_dict(), str(self.sweep.student.device)

    def close(self) -> None:
        self.sweep.student = self.sweep.base_weights = None
        from ..models import free_memory
        free_memory()

    def __getstate__(self) -> dict:
        sweep = copy.copy(self.sweep)
        sweep.emit, sweep.log, sweep.executor = ignore, None, None
        sweep.student = sweep.base_weights = sweep._routes = None
        return {"sweep": sweep, "base": None}


def _nanmean(xs: Sequence[float]) -> float:
    kept = [x for x in xs if not math.isnan(x)]
    return sum(kept) / len(kept) if kept else math.nan
