"""The knowledge-incorporation benchmark (SEAL's Table 2) on our student, with honest error bars.

Rows are conditions (base, passage, teacher[:FAMILY|:ADAPTER], ref:NAME); for each passage, seed and question
format the student absorbs each self-edit into a fresh LoRA (``--mode single``) or all passages' self-edits in one
update (``--mode cpt``) through :func:`student.innerloop.evaluate`, then answers the questions closed-book.

Everything lands in ``out``: ``run.json`` (the settings; a re-run with other settings is refused),
``selfedits.jsonl`` (teacher completions, generated once), ``results.jsonl`` (one line per (condition, format,
passage, seed), appended atomically; finished work is skipped on a re-run), ``results.json`` and ``table.md``.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from student.config import QUESTION_FORMATS
from student.innerloop import Candidate, CandidateResult
from teacher.parsing import passage_text

from ..absorb import Material, fingerprint as absorb_fingerprint, plan, study_pairs, write_questions
from ..config import Config
from ..errors import BadInput
from ..models import free_memory, load_model, load_teacher, teacher_versions
from ..events import Emit, Message, Progress, Stage, ignore
from .executor import EvaluateJob, batches, make_executor
from .conditions import DEFAULT_CONDITIONS, Condition, merged_texts, parse_conditions, self_edit_texts
from .report import aggregate, markdown, record_machine, recorded_machine, sanitize
from .runlog import JsonlLog, atomic_write, check_run_file, teacher_identity, train_identity
from .squad import DEFAULT_DATA, Passage, data_digest, load_passages, load_reference

MODES = ("single", "cpt")
ENGINES = ("auto", "sequential", "batched")
FORMATS = (*QUESTION_FORMATS, "both")
Loader = Callable[[], tuple[Any, Any]]                 # () -> (model, tokenizer)
TeacherLoader = Callable[[str], tuple[Any, Any]]       # adapter id ("" = untrained) -> (model, tokenizer)
OnRecord = Callable[[dict, int, int], None]            # (record, done, total) after each record is written


@dataclass
class BenchOptions:
    data: Path = DEFAULT_DATA
    n: Optional[int] = None                  # first N passages (default all)
    mode: str = "single"
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    seeds: int = 1
    out: Optional[Path] = None               # default runs/knowledge-<timestamp>
    engine: str = "auto"
    question_format: Optional[str] = None    # chat | raw | both; None = the config's answer.question_format
    k: Optional[int] = None                  # self-edits per passage (teacher: teacher.samples; ref: all)
    group: int = 8                           # adapters trained at once by the batched engine
    subset: Optional[Path] = None            # only the passages of `data` that are also in this SQuAD file
    shard: tuple[int, int] = (0, 1)          # (i, n): this process does the i-th of n shares of the work
    report_only: bool = False                # write the table from the results already logged; compute nothing

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInput(f"--mode {self.mode!r}: choose single or cpt")
        if self.engine not in ENGINES:
            raise BadInput(f"--engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.question_format is not None and self.question_format not in FORMATS:
            raise BadInput(f"--question-format {self.question_format!r}: choose chat, raw or both")
        if self.seeds < 1 or (self.k is not None and self.k < 1) or self.group < 1:
            raise BadInput("--seeds, --k and --group must be at least 1")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise BadInput(f"--shard {i}/{n}: I/N with 0 <= I < N")
        if self.out is None:
            self.out = Path("runs") / f"knowledge-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass
class Unit:
    """One line of results.jsonl: a condition, question format, passage (or the CPT set) and training seed."""
    condition: Condition
    fmt: str
    passage: int | str
    seed: int
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return (self.condition.name, self.fmt, self.passage, self.seed)


def record_key(rec: dict) -> tuple:
    return (rec["condition"], rec["format"], rec["passage"], rec["seed"])


class KnowledgeBench:
    """Set up with :meth:`prepare` (validates everything, loads no model), then :meth:`run`.

    ``load_student()`` / ``load_teacher(adapter_id)`` return (model, tokenizer); the defaults load the configured
    models (tests inject tiny ones). ``on_record(record, done, total)`` is called after each result is saved."""

    def __init__(self, cfg: Config, opts: BenchOptions, emit: Emit = ignore, load_student: Optional[Loader] = None,
                 load_teacher: Optional[TeacherLoader] = None, on_record: Optional[OnRecord] = None, executor=None):
        self.cfg, self.opts, self.emit = cfg, opts, emit
        # a plain partial, not a bound method: Ray workers receive the loader, not the bench
        self.load_student = load_student or functools.partial(load_model, cfg.models.student, cfg.home, cfg.models)
        self.executor = executor or make_executor(cfg.run)  # [run] executor: where the units are evaluated
        self.group = opts.group
        self.load_teacher = load_teacher or self._default_teacher
        self.on_record = on_record
        self.out = Path(opts.out)
        self.passages: list[Passage] = []
        self.conditions: list[Condition] = []
        self.completions: dict[str, list[list[str]]] = {}  # condition name -> completions per passage
        self.formats: list[str] = []
        self.seeds: list[int] = []
        self.gen_seconds: dict[str, float] = {}
        self.qa: dict[int, list[tuple[str, str]]] = {}  # passage index -> distill's question-answer material
        self._model = None                              # the student (model, tokenizer), once loaded
        self.digest = ""
        self.device = ""

    # ---- setup ------------------------------------------------------------------------------------------------
    def _adapter_family(self, adapter_id: str) -> str:
        return str(teacher_versions(self.cfg.home, create=True).meta(adapter_id).get("family", "") or "")

    def _teacher_ids(self) -> list[str]:
        store = teacher_versions(self.cfg.home)
        return store.ids() if store else []

    def prepare(self) -> "KnowledgeBench":
        o, cfg = self.opts, self.cfg
        every = load_passages(o.data)
        pool = every
        if o.subset is not None:
            wanted = {p.context for p in load_passages(o.subset)}
            pool = [p for p in every if p.context in wanted]
            if not pool:
                raise BadInput(f"--subset {o.subset}: none of its passages is in {o.data}")
        if o.n is not None and not 1 <= o.n <= len(pool):
            raise BadInput(f"--n {o.n}: {o.subset or o.data} has {len(pool)} passages"
                           + (f" in {o.data}" if o.subset is not None else ""))
        self.passages = pool[: o.n] if o.n else pool
        self.digest = data_digest(every)  # of the whole file: runs on subsets of it share one folder
        self.conditions = parse_conditions(o.conditions, cfg.teacher.family, self._teacher_ids, self._adapter_family)
        for i, cond in enumerate(self.conditions):
            if cond.kind == "ref":
                comps, family = load_reference(cond.ref, self.passages)
                self.completions[cond.name] = [c[: o.k] if o.k else c for c in comps]
                self.conditions[i] = dataclasses.replace(cond, family=family)
        fmt = o.question_format or cfg.answer.question_format
        self.formats = list(QUESTION_FORMATS) if fmt == "both" else [fmt]
        self.seeds = [cfg.train.seed + s for s in range(o.seeds)]
        check_run_file(self.out / "run.json", self.settings_fingerprint())
        return self

    def settings_fingerprint(self) -> dict:
        """What must not change between a run and its resumption (results would not be comparable)."""
        c = self.cfg
        answer = {k: v for k, v in dataclasses.asdict(c.answer).items() if k not in ("question_format", "batch_size")}
        return {"data": self.digest, "mode": self.opts.mode, "k": self.opts.k, "train": train_identity(c.train),
                **absorb_fingerprint(c.absorb, c.train.side_weight),
                "lora": dataclasses.asdict(c.lora), "answer": answer, "parse": dataclasses.asdict(c.parse),
                "teacher": teacher_identity(c.teacher, ("family", "cloze_fallback")),  # cloze probes: ingest only
                "models": {"student": c.models.student, "teacher": c.models.teacher, "dtype": c.models.dtype,
                           "teacher_dtype": c.models.teacher_dtype}}

    # ---- models -----------------------------------------------------------------------------------------------
    def _default_teacher(self, adapter_id: str):
        return load_teacher(self.cfg.home, self.cfg.models, adapter_id)

    # ---- teacher self-edits -------------------------------------------------------------------------------------
    def generate_self_edits(self) -> None:
        """Teacher completions for every teacher condition, generated in fixed chunks of passages (seeded per
        chunk, so a resumed run regenerates exactly what an uninterrupted one would) and cached in selfedits.jsonl."""
        teacher_conds = [c for c in self.conditions if c.needs_teacher]
        if not teacher_conds:
            return
        from teacher.backend import TransformersBackend
        from teacher.selfedit import Teacher

        cache = JsonlLog(self.out / "selfedits.jsonl", lambda r: (r["condition"], r["passage"]),
                         repair=not self.opts.report_only)
        k = self.opts.k or self.cfg.teacher.samples
        chunk = self._chunk()
        loaded: dict[str, Teacher] = {}  # one teacher model at a time, kept across conditions that share it

        def teacher_for(adapter: str) -> Teacher:
            if adapter not in loaded:
                loaded.clear()
                free_memory()
                self.emit(Stage("load", f"teacher model ({self.cfg.models.teacher}{' + ' + adapter if adapter else ''})"))
                model, tok = self.load_teacher(adapter)
                loaded[adapter] = Teacher(TransformersBackend(model, tok), tok, self.cfg.teacher, self.cfg.parse)
            return loaded[adapter]

        for cond in sorted(teacher_conds, key=lambda c: c.adapter):
            def cached(p: Passage) -> bool:
                rec = cache.get((cond.name, p.index))
                return rec is not None and len(rec["completions"]) >= k
            mine = [c for c in range(0, len(self.passages), chunk)  # cpt: every shard needs every self-edit
                    if self._mine(c // chunk) or self.opts.mode == "cpt"]
            todo = [] if self.opts.report_only else \
                [c for c in mine if not all(cached(p) for p in self.passages[c: c + chunk])]
            task = f"self-edits {cond.name}"
            for done, start in enumerate(todo):
                group = self.passages[start: start + chunk]
                self.emit(Progress(task, done, len(todo), f"passages {start}-{start + len(group) - 1}"))
                t0 = time.perf_counter()
                edits = teacher_for(cond.adapter).propose_many([(p.title, p.context) for p in group], k=k,
                                                               family=cond.family, seed=self.cfg.teacher.seed + start // chunk)
                secs = (time.perf_counter() - t0) / len(group)
                for p, es in zip(group, edits):
                    if not cached(p):
                        cache.append({"condition": cond.name, "passage": p.index, "family": cond.family,
                                      "seconds": secs, "completions": [e.completion for e in es]})
            if todo:
                self.emit(Progress(task, len(todo), len(todo)))
            recs = [cache.get((cond.name, p.index)) for p in self.passages]  # None: another shard's passage
            self.completions[cond.name] = [r["completions"][:k] if r else [] for r in recs]
            secs = [r.get("seconds", 0.0) for r in recs if r]
            self.gen_seconds[cond.name] = sum(secs) / max(1, len(secs))
        loaded.clear()
        free_memory()

    def student_model(self):
        """The student (model, tokenizer), loaded once for the run."""
        if self._model is None:
            self.emit(Stage("load", f"student model ({self.cfg.models.student})"))
            self._model = self.load_student()
            self.device = str(next(self._model[0].parameters()).device)
        return self._model

    def open_book(self, questions: list[str], contexts: list[str], fmt: Optional[str] = None) -> list[str]:
        """The base model's greedy answers with each context before its question (the open-book prompt)."""
        from student.inference import generate_greedy, question_prompts
        model, tok = self.student_model()
        answer = self.cfg.answer
        prompts = question_prompts(tok, questions, fmt or answer.question_format, contexts)
        return generate_greedy(model, tok, prompts, answer.max_new_tokens, answer.batch_size)

    def generate_study(self) -> None:
        """Distill's question-answer material per passage, as :func:`agent.absorb.write_material` writes it: the
        untrained teacher's questions answered by the base model with the passage in context (cached in
        study.jsonl), and the sentence cues."""
        a = self.cfg.absorb
        if a.method != "distill" or self.opts.report_only:
            return
        cache = JsonlLog(self.out / "study.jsonl", lambda r: r["passage"])
        mine = [p for i, p in enumerate(self.passages) if self._mine(i // self._chunk()) or self.opts.mode == "cpt"]
        todo = [p for p in mine if p.index not in cache]
        if todo and "questions" in a.study_set and a.questions > 0:
            from teacher.backend import TransformersBackend
            from teacher.selfedit import Teacher
            self.emit(Stage("load", f"teacher model ({self.cfg.models.teacher}) for study questions"))
            model, tok = self.load_teacher("")
            teacher = Teacher(TransformersBackend(model, tok), tok, self.cfg.teacher, self.cfg.parse)
            written = {}
            chunk = 32
            for start in range(0, len(todo), chunk):  # one generate call per chunk, seeded by its first passage
                self.emit(Progress("study questions", start, len(todo)))
                group = todo[start: start + chunk]
                qs = write_questions(teacher, [(p.title, p.context) for p in group], a,
                                     seed=self.cfg.teacher.seed + group[0].index)
                written.update({p.index: q for p, q in zip(group, qs)})
            del teacher, model
            free_memory()
            flat = [(p, q) for p in todo for q in written[p.index]]
            self.emit(Stage("study", f"open-book answers to {len(flat)} study questions"))
            answers = self.open_book([q for _, q in flat], [passage_text(p.title, p.context, self.cfg.parse)
                                                            for p, _ in flat])
            for p in todo:
                pairs = [(q, ans) for (pp, q), ans in zip(flat, answers) if pp is p]
                cache.append({"passage": p.index, "questions": [q for q, _ in pairs], "answers": [x for _, x in pairs]})
        for p in mine:
            rec = cache.get(p.index) or {"questions": [], "answers": []}
            self.qa[p.index] = study_pairs(p.context, rec["questions"], rec["answers"], a)

    # ---- units --------------------------------------------------------------------------------------------------
    def _chunk(self) -> int:
        """Passages per teacher generate call (each call is seeded by its chunk number)."""
        return max(1, 16 // (self.opts.k or self.cfg.teacher.samples))

    def _mine(self, part: int) -> bool:
        """Whether work part ``part`` (a chunk of passages; a unit in cpt mode) is this shard's (``--shard``).
        Shards split by whole generation chunks, so sharded self-edits are those of an unsharded run."""
        i, n = self.opts.shard
        return part % n == i

    def _cpt_key(self) -> str:
        key = f"cpt:{len(self.passages)}"
        if self.opts.subset is not None:  # another set of the same size must not share the key
            key += ":" + hashlib.sha256(",".join(str(p.index) for p in self.passages).encode()).hexdigest()[:12]
        return key

    def _texts(self, cond: Condition) -> list[list[list[str]]]:
        comps = self.completions.get(cond.name) or [[] for _ in self.passages]
        return [self_edit_texts(cond, p, c, self.cfg.parse) for p, c in zip(self.passages, comps)]

    def _candidate(self, cond: Condition, texts: list[list[str]], passages: list[Passage], questions: list[str],
                   golds: list[str], settings, tag: str, fmt: str) -> Candidate:
        """The update that learns ``texts[i]`` of ``passages[i]`` (through :func:`agent.absorb.plan`); none for the
        rows that train nothing (base, open-book)."""
        if cond.seed_invariant:
            return Candidate([], list(questions), list(golds), settings, tag)
        material = [Material(passage_text(p.title, p.context, self.cfg.parse), t, self.qa.get(p.index, []))
                    for p, t in zip(passages, texts)]
        tok = self.student_model()[1] if self.cfg.absorb.method == "distill" else None
        return plan(material, self.cfg.absorb, settings, tok, questions, golds, tag, fmt)

    def units(self) -> list[Unit]:
        """Every unit of work, ordered so that an interrupted run has whole passages done (all conditions)."""
        texts = {c.name: self._texts(c) for c in self.conditions}
        units: list[Unit] = []
        if self.opts.mode == "cpt":
            key = self._cpt_key()
            questions = [q for p in self.passages for q in p.questions]
            golds = [g for p in self.passages for g in p.golds]
            for fmt in self.formats:
                for seed in self.seeds:
                    for cond in self.conditions:
                        if cond.seed_invariant and seed != self.seeds[0]:
                            continue
                        settings = dataclasses.replace(self.cfg.train, seed=seed)
                        per_passage = [merged_texts([edits]) for edits in texts[cond.name]]
                        cand = self._candidate(cond, per_passage, self.passages, questions, golds, settings,
                                               f"{cond.name}:{fmt}:{key}:seed{seed}", fmt)
                        units.append(Unit(cond, fmt, key, seed, [cand]))
            return [u for j, u in enumerate(units) if self._mine(j)]
        for fmt in self.formats:
            for i, p in enumerate(self.passages):
                if not self._mine(i // self._chunk()):
                    continue
                for seed in self.seeds:
                    for cond in self.conditions:
                        if cond.seed_invariant and seed != self.seeds[0]:
                            continue
                        settings = dataclasses.replace(self.cfg.train, seed=seed)
                        cands = [self._candidate(cond, [t], [p], p.questions, p.golds, settings,
                                                 f"{cond.name}:{fmt}:{p.index}:{e}:seed{seed}", fmt)
                                 for e, t in enumerate(texts[cond.name][i])]
                        units.append(Unit(cond, fmt, p.index, seed, cands))
        return units

    # ---- run ----------------------------------------------------------------------------------------------------
    def _open_book_result(self, unit: Unit) -> CandidateResult:
        """The open-book row: the base model answers with its passage(s) in context, nothing trained."""
        from student.grading import grade, mean_grade
        t0 = time.perf_counter()
        by_index = {p.index: p for p in self.passages}
        ps = self.passages if unit.passage not in by_index else [by_index[unit.passage]]
        questions = [q for p in ps for q in p.questions]
        contexts = [passage_text(p.title, p.context, self.cfg.parse) for p in ps for _ in p.questions]
        golds = [g for p in ps for g in p.golds]
        answers = self.open_book(questions, contexts, unit.fmt)
        grades = [grade(a, g) for a, g in zip(answers, golds)]
        m = mean_grade(grades)
        return CandidateResult(unit.condition.name, answers, grades, m.contains, m.f1, m.em, float("nan"), [], 0, 0,
                               time.perf_counter() - t0)

    def _record(self, unit: Unit, results: list[CandidateResult], wall: float) -> dict:
        edits = [{"texts": c.n_texts, "steps": r.steps, "tokens": r.tokens, "seconds": r.seconds,
                  "loss_first": r.losses[0] if r.losses else None, "loss_last": r.losses[-1] if r.losses else None,
                  "nll": r.nll, "answers": r.answers, "grades": [[g.contains, g.f1, g.em] for g in r.grades]}
                 for c, r in zip(unit.candidates, results)]
        return {"condition": unit.condition.name, "format": unit.fmt, "passage": unit.passage, "seed": unit.seed,
                "mode": self.opts.mode, "device": self.device, "wall_seconds": wall, "edits": edits}

    def run(self) -> dict:
        if not self.passages:
            self.prepare()
        started = time.time()
        log = JsonlLog(self.out / "results.jsonl", record_key, repair=not self.opts.report_only)
        self.generate_self_edits()
        self.generate_study()
        units = self.units()
        pending = [] if self.opts.report_only else [u for u in units if u.key not in log]
        engine = self.opts.engine
        from ..models import pick_device
        device = str(pick_device(self.cfg.models.device))
        if pending:
            if len(pending) < len(units):
                self.emit(Message("info", f"resuming: {len(units) - len(pending)} of {len(units)} results already in {self.out}"))
            done = len(units) - len(pending)
            for u in [u for u in pending if u.condition.kind == "open-book"]:  # answered here, nothing trained
                pending.remove(u)
                rec = self._record(u, [self._open_book_result(u)], 0.0)
                device = self.device
                record_machine(self.out, device)
                log.append(rec)
                done += 1
                if self.on_record is not None:
                    self.on_record(rec, done, len(units))
            self._model = None  # the executor's workers load their own student
            free_memory()
        if pending:
            self.group = self.executor.group(self.opts.group)
            target = 1 if engine == "sequential" else self.group  # fill the batched engine's groups
            work: list[list[Unit]] = []  # one item per inner-loop call, formed here so every executor batches alike
            for fmt in self.formats:
                todo = [u for u in pending if u.fmt == fmt]
                work += [[todo[i] for i in b] for b in batches([len(u.candidates) for u in todo], target)]
            items = [([c for u in batch for c in u.candidates],
                      dataclasses.replace(self.cfg.answer, question_format=batch[0].fmt)) for batch in work]
            job = EvaluateJob(self.load_student, self.cfg.lora, engine, self.group,
                              on_progress=lambda d, t: self.emit(Progress("self-edits evaluated", d, t)))
            where = f" on {self.executor.name} workers" if self.executor.name != "local" else ""
            self.emit(Stage("load", f"student model ({self.cfg.models.student}){where}"))
            self.emit(Progress("knowledge", done, len(units), f"{work[0][0].condition.name} p{work[0][0].passage}"))
            for j, (results, wall, worker_device) in enumerate(self.executor.map(job, items)):
                batch, n_cands = work[j], len(items[j][0])
                if not self.device:
                    device = self.device = worker_device
                    record_machine(self.out, device)
                at = 0
                for u in batch:  # the driver alone appends: a retried item is written once
                    n = len(u.candidates)
                    rec = self._record(u, results[at: at + n], wall * n / max(1, n_cands))
                    at += n
                    log.append(rec)
                    done += 1
                    if self.on_record is not None:
                        self.on_record(rec, done, len(units))
                if j + 1 < len(work):
                    self.emit(Progress("knowledge", done, len(units),
                                       f"{work[j + 1][0].condition.name} p{work[j + 1][0].passage}"))
            self.emit(Progress("knowledge", done, len(units)))
        return self.finish(log, engine, device, time.time() - started)

    def finish(self, log: JsonlLog, engine: str, device: str, seconds: float) -> dict:
        cfg, o = self.cfg, self.opts
        fmt_default = cfg.answer.question_format
        doc = {
            "benchmark": "knowledge",
            "config": {
                "data": str(o.data), "data_digest": self.digest, "n": len(self.passages), "mode": o.mode,
                "conditions": [c.name for c in self.conditions], "seeds": self.seeds, "k": o.k,
                "teacher_samples": cfg.teacher.samples, "engine": engine, "group": self.group,
                "executor": self.executor.name,
                "question_formats": self.formats, "question_format_default": fmt_default,
                "question_format_note": (f"question format {', '.join(self.formats)}; the default is {fmt_default!r} "
                                         f"(config answer.question_format; --question-format both measures both)"),
                "settings": cfg.to_dict(), "out": str(self.out),
            },
            **aggregate(self.passages, self.conditions, self.formats, self.seeds, o.mode, list(log), self._cpt_key()),
            "timing": {"seconds_this_invocation": seconds, "generation_seconds_per_passage": self.gen_seconds},
            "machine": recorded_machine(self.out, device),
        }
        doc = sanitize(doc)
        atomic_write(self.out / "results.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        atomic_write(self.out / "table.md", markdown(doc))
        return doc


__all__ = ["BenchOptions", "KnowledgeBench", "MODES", "FORMATS"]
