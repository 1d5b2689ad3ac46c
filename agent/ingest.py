"""The ingest pipeline: read -> chunk -> probes before -> teacher self-edits -> student absorbs -> probes after
-> guard -> commit (or roll back).

Nothing is written until the commit: the adapter folder (atomic), then the records, then the edit-log entry,
which is the commit point. A cancel or a crash before it leaves the store as it was (leftovers are swept).
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from student.config import TrainSettings
from student.trainer import TrainResult
from teacher.parsing import passage_text

from .absorb import Material, absorb, needs_self_edits, plan, write_material
from .core import Agent, new_edit_id
from .documents import Document, chunk_text, read_documents
from .errors import BadInput, Cancelled
from .events import (DocumentRead, DocumentsQueued, EditCommitted, EditRejected, Emit, Message, ProbeResult,
                     ProbeSummary, RetentionRow, SelfEditProposed, SelfEditToken, Stage, TrainStep, ignore)
from .memory import Edit
from .replay import ReplayMix, replay_mix
from .routing import Pending
from .util import nanmean


@dataclass
class IngestOptions:
    force: bool = False
    family: str | None = None      # prompt family; None = config
    samples: int | None = None     # self-edits per chunk; None = config
    guard: bool | None = None      # None = config


@dataclass
class Proposal:
    """What the teacher proposed for a document and how the student will learn it."""
    family: str
    k: int
    proposals: list                # (chunk, sample, family, completion, texts) per self-edit
    texts: list[str]               # every distinct training text, in order
    settings: TrainSettings
    replay: ReplayMix
    material: list[Material]       # per chunk: its context, its texts, distill's question-answer pairs


@dataclass
class Outcome:
    edit_id: str
    doc_id: str
    title: str
    status: str                    # committed | rejected
    before: float
    after: float
    nll_before: float
    nll_after: float
    seconds: float
    reason: str
    adapter_id: str = ""
    train_steps: int = 0
    texts: int = 0
    answers: list = field(default_factory=list)


def judge(before: float, after: float, nll_before: float, nll_after: float, old_before: dict, old_after: dict,
          tolerance: float, n_probes: int) -> tuple[bool, str]:
    """The guard: keep an edit only if its own probes got no worse and earlier documents did not fall."""
    if n_probes == 0:
        return True, "no probes for this document: accepted unguarded"
    if after < before:
        return False, f"probe accuracy fell {before:.2f} -> {after:.2f}"
    if old_before:
        b = sum(old_before.values()) / len(old_before)
        a = sum(old_after.get(d, 0.0) for d in old_before) / len(old_before)
        if a < b - tolerance:
            return False, f"earlier documents fell {b:.2f} -> {a:.2f} (tolerance {tolerance:.2f})"
    if after == before and nll_after >= nll_before:
        return False, f"accuracy unchanged ({after:.2f}) and gold-answer NLL did not fall ({nll_before:.3f} -> {nll_after:.3f})"
    return True, f"accuracy {before:.2f} -> {after:.2f}, gold-answer NLL {nll_before:.3f} -> {nll_after:.3f}"


class Ingest:
    """One ingest run over several documents, sharing the loaded models."""

    def __init__(self, agent: Agent, options: IngestOptions | None = None, emit: Emit = ignore,
                 cancel: threading.Event | None = None):
        self.agent, self.opts, self.emit, self.cancel = agent, options or IngestOptions(), emit, cancel
        self.cfg = agent.cfg

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled: nothing was committed")

    def read(self, paths: list[Path]) -> list[Document]:
        """Every input checked before anything is written."""
        docs = read_documents(paths, self.cfg.ingest.max_file_bytes)
        if not self.opts.force:
            active = {e.doc_id: e.edit_id for e in self.agent.memory.state().active()}
            for doc in docs:
                if doc.doc_id in active:
                    raise BadInput(f"{doc.source}: already ingested (edit {active[doc.doc_id]}); --force learns it again")
        return docs

    def run(self, paths: list[Path]) -> list[Outcome]:
        docs = self.read(paths)
        self.emit(DocumentsQueued(tuple((d.doc_id, d.title) for d in docs)))
        self.agent.emit = self.emit
        self.agent.sweep()
        if self.agent.update_mode != self.cfg.ingest.update:
            self.emit(Message("warning", f"this store learns with update '{self.agent.update_mode}' (fixed by its "
                                         f"first document); ingest.update = '{self.cfg.ingest.update}' is ignored"))
        return [self.one(doc) for doc in docs]

    # ---- one document -------------------------------------------------------------------------------------------
    def retention_probes(self) -> dict[str, list[tuple[str, str]]]:
        """A capped, fixed subset of every earlier active document's probes (the same subset each time)."""
        probes = self.agent.memory.probes()
        if not probes:
            return {}
        per_doc = max(1, self.cfg.ingest.retention_probes // len(probes))
        return {d: p[:per_doc] for d, p in probes.items()}

    def probe_phase(self, phase: str, doc_id: str, probes: list[tuple[str, str]],
                    pending: Pending | None = None) -> tuple[dict, float]:
        """Answer and grade a document's probes, with the gold-answer NLL; emit each result and the summary."""
        self.emit(Stage("probe", phase, total=len(probes)))
        scored = self.agent.score(probes, pending)
        nll = nanmean(self.agent.answer_nll([q for q, _ in probes], [a for _, a in probes], pending)) if probes else 0.0
        for r in scored["rows"]:
            self.emit(ProbeResult(phase, doc_id, r["question"], r["gold"], r["answer"], r["correct"], r["f1"]))
        self.emit(ProbeSummary(phase, doc_id, scored["accuracy"], scored["f1"], nll, len(probes)))
        return scored, nll

    def one(self, doc: Document) -> Outcome:
        """Learn one document: probes before, self-edits, the update, probes after, the guard, commit or reject."""
        t0 = time.time()
        tok = self.agent.student.tokenizer
        chunks = chunk_text(doc.text, lambda s: len(tok(s, add_special_tokens=False).input_ids),
                            self.cfg.ingest.chunk_tokens)
        probes, origin = self.probes_of(doc, chunks)
        self.emit(DocumentRead(doc.doc_id, doc.title, doc.source, len(chunks), len(probes)))
        before, nll_before = self.probe_phase("before", doc.doc_id, probes)
        prop = self.propose(doc, chunks)
        old_probes, old_before = self.retention_before()
        parent = self.agent.memory.state().head
        snapshot = self.agent.student.state()
        try:
            result, pending = self.train(doc, chunks, prop)
            after, nll_after = self.probe_phase("after", doc.doc_id, probes, pending)
            old_after = {}
            if old_probes:
                self.emit(Stage("retention", f"earlier documents ({sum(map(len, old_probes.values()))} probes)"))
                old_after = {d: s["accuracy"] for d, s in self.agent.score_each(old_probes, pending).items()}
            self.check_cancel()
        except BaseException:
            self.agent.student.load(snapshot)
            raise

        guard = self.cfg.ingest.guard if self.opts.guard is None else self.opts.guard
        ok, reason = judge(before["accuracy"], after["accuracy"], nll_before, nll_after, old_before, old_after,
                           self.cfg.ingest.guard_tolerance, len(probes))
        if not guard and not ok:
            ok, reason = True, f"guard off: kept although {reason}"
        edit = Edit(edit_id=new_edit_id(), seq=self.agent.memory.next_seq(), kind="commit" if ok else "reject",
                    doc_id=doc.doc_id, title=doc.title, parent_adapter=parent, created=time.time(),
                    before=before["accuracy"], after=after["accuracy"], nll_before=nll_before, nll_after=nll_after,
                    reason=reason,
                    info={"update": self.agent.update_mode, "family": prop.family, "samples": prop.k,
                          "texts": len(prop.texts), "replay": len(prop.replay.texts),
                          "anchor": len(prop.replay.anchor), "steps": result.steps,
                          "losses": [round(x, 4) for x in result.losses],
                          "train": asdict(prop.settings), "source": doc.source, "probe_origin": origin})
        answers = [{"question": q, "gold": g, "before": b["answer"], "after": a["answer"],
                    "before_correct": b["correct"], "after_correct": a["correct"]}
                   for (q, g), b, a in zip(probes, before["rows"], after["rows"])]
        if not ok:
            self.agent.student.load(snapshot)
            edit.seconds = time.time() - t0
            self.agent.memory.log(edit)
            self.emit(EditRejected(edit.edit_id, doc.doc_id, edit.before, edit.after, reason))
            return self._outcome(edit, "rejected", result, answers)
        # a document without probes has no accuracy to track: it stays out of the forgetting matrix
        edit.retention = {**old_after, **({doc.doc_id: after["accuracy"]} if probes else {})}
        self.commit(edit, doc, chunks, probes, origin, prop, pending, t0)
        return self._outcome(edit, "committed", result, answers)

    # ---- the phases of one document -------------------------------------------------------------------------------
    def probes_of(self, doc: Document, chunks: list[str]) -> tuple[list[tuple[str, str]], str]:
        """The document's own questions, else probe questions the teacher writes per chunk."""
        if doc.probes:
            return list(doc.probes), "given"
        self.emit(Stage("probes", "the teacher writes probe questions", total=len(chunks)))
        probes: list[tuple[str, str]] = []
        for chunk in chunks:
            self.check_cancel()
            probes += self.agent.teacher.make_probes(doc.title, chunk, self.cfg.ingest.probes_per_doc)
        probes = probes[: self.cfg.ingest.probes_per_doc * max(1, len(chunks))]
        if not probes:
            self.emit(Message("warning", "the teacher wrote no usable probe questions; the edit is not guarded"))
        return probes, "teacher"

    def propose(self, doc: Document, chunks: list[str]) -> "Proposal":
        """The teacher's self-edits for every chunk (streamed as events), their texts, settings and replay."""
        cfg, emit = self.cfg, self.emit
        family = self.opts.family or cfg.teacher.family
        # distill learns the teacher's self-edits only with [absorb] study "texts"; else the teacher writes questions
        k = (self.opts.samples or cfg.teacher.samples) if needs_self_edits(cfg.absorb) else 0
        if k:
            emit(Stage("generate", f"{k} {family} self-edit(s) for {len(chunks)} chunk(s)", total=k * len(chunks)))
        proposals, texts, directives = [], [], {}
        per_chunk: list[list[str]] = [[] for _ in chunks] if k else \
            [[passage_text(doc.title, c, cfg.parse)] for c in chunks]
        texts = [t for ts in per_chunk for t in ts]
        for ci, chunk in enumerate(chunks if k else []):
            self.check_cancel()

            def on_text(_p: int, s: int, text: str, ci: int = ci) -> None:
                self.check_cancel()
                emit(SelfEditToken(ci, s, text))

            for si, se in enumerate(self.agent.teacher.propose(doc.title, chunk, k=k, family=family, on_text=on_text)):
                emit(SelfEditProposed(ci, si, se.family, tuple(se.texts), dict(se.directives)))
                proposals.append((ci, si, se.family, se.completion, list(se.texts)))
                texts.extend(t for t in se.texts if t not in texts)
                per_chunk[ci].extend(t for t in se.texts if t not in per_chunk[ci])
                directives = directives or dict(se.directives)
        settings = cfg.train
        if directives and cfg.ingest.use_directives:
            settings = replace(settings, **{k: v for k, v in directives.items() if hasattr(settings, k)})
        # route: a fresh adapter for this document alone, nothing to replay
        strategy = "none" if self.agent.update_mode == "route" else cfg.replay.strategy
        stream = self.agent.memory.training_stream() if strategy != "none" else []  # read only if used
        replay = replay_mix(strategy, stream, cfg.replay.capacity, cfg.replay.ratio, len(texts),
                            cfg.replay.seed + self.agent.memory.next_seq())
        if cfg.absorb.method == "distill":
            emit(Stage("study", "study material: the teacher's questions, answered with the document in context"))
        material = write_material(self.agent.teacher, self.open_book,
                                  [(doc.title, c, passage_text(doc.title, c, cfg.parse), t)
                                   for c, t in zip(chunks, per_chunk)], cfg.absorb)
        for ci, m in enumerate(material):  # the study questions, shown like self-edits (CLI and TUI)
            if m.qa:
                emit(SelfEditProposed(ci, 0, "study questions", tuple(f"{q} -> {a}" for q, a in m.qa), {}))
        return Proposal(family, k, proposals, texts, settings, replay, material)

    def open_book(self, questions: list[str], contexts: list[str]) -> list[str]:
        """The base model's answers with the document in its context (distill's study answers)."""
        self.check_cancel()
        return self.agent.student.answer(questions, base=True, contexts=contexts)

    def retention_before(self) -> tuple[dict[str, list[tuple[str, str]]], dict[str, float]]:
        """Earlier documents' retention probes and their accuracy now (from the head edit's record where it has
        one, else measured)."""
        old_probes = self.retention_probes()
        st = self.agent.memory.state()
        head_edit = next((e for e in reversed(st.edits) if e.kind == "commit" and e.adapter_id == st.head), None)
        old_before = {d: (head_edit.retention.get(d) if head_edit and d in head_edit.retention else None)
                      for d in old_probes}
        missing = {d: p for d, p in old_probes.items() if old_before[d] is None}
        old_before.update({d: s["accuracy"] for d, s in self.agent.score_each(missing).items()})
        return old_probes, old_before

    def train(self, doc: Document, chunks: list[str], prop: "Proposal") -> tuple[TrainResult, Pending | None]:
        """The update (through :func:`agent.absorb.absorb`); in route mode the new adapter as a pending entry."""
        route = self.agent.update_mode == "route"
        update = plan(prop.material, self.cfg.absorb, prop.settings, self.agent.student.tokenizer,
                      question_format=self.cfg.answer.question_format)
        beside = f" ({len(update.side)} beside the passage, weight {prop.settings.side_weight:g})" if update.side else ""
        anchor = f" + {len(prop.replay.anchor)} anchor" if prop.replay.anchor else ""
        what = "a fresh adapter for this document" if route else f"+ {len(prop.replay.texts)} replay{anchor}"
        learns = f"{len(update.study)} study items (distilled)" if update.study else f"{len(prop.texts)} texts{beside}"
        self.emit(Stage("train", f"{learns} {what}, {prop.settings.epochs} epochs, lr {prop.settings.lr:g}"))
        if route:
            self.agent.student.reset()

        def on_step(step: int, total: int, epoch: int, loss: float) -> None:
            self.check_cancel()
            self.emit(TrainStep(step, total, epoch, loss))

        result = absorb(self.agent.student, update, prop.replay, on_step)
        self.check_cancel()
        pending = None
        if route:
            pending = Pending(doc.doc_id, self.agent.memory.embed(chunks), self.agent.student.state())
        return result, pending

    def commit(self, edit: Edit, doc: Document, chunks: list[str], probes: list[tuple[str, str]], origin: str,
               prop: "Proposal", pending: Pending | None, t0: float) -> None:
        """Write the adapter (atomic), the records, then the edit-log entry: the commit point."""
        agent, emit = self.agent, self.emit
        emit(Stage("commit", edit.edit_id))
        edit.adapter_id = agent.adapters.new_id()
        if pending:
            agent.student.load(pending.state)
        agent.student.save(agent.adapters, edit.adapter_id,
                           {"edit_id": edit.edit_id, "doc_id": doc.doc_id, "lora": asdict(self.cfg.lora)})
        if pending:
            agent.student.reset()  # route: the student rests at the base; questions load their document's adapter
        agent.memory.add_document(edit.edit_id, doc, chunks, probes, origin)
        agent.memory.add_selfedits(edit.edit_id, doc.doc_id, prop.proposals)
        agent.memory.add_training(edit.edit_id, edit.seq, prop.texts)
        edit.seconds = time.time() - t0
        agent.memory.log(edit)  # the commit point
        emit(EditCommitted(edit.edit_id, doc.doc_id, edit.adapter_id, edit.before, edit.after, edit.seconds,
                           edit.reason))
        emit(RetentionRow(edit.edit_id, dict(edit.retention)))

    @staticmethod
    def _outcome(edit: Edit, status: str, result, answers: list) -> Outcome:
        return Outcome(edit.edit_id, edit.doc_id, edit.title, status, edit.before, edit.after, edit.nll_before,
                       edit.nll_after, round(edit.seconds, 2), edit.reason, edit.adapter_id, result.steps,
                       edit.info["texts"], answers)
