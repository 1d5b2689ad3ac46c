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

from teacher.parsing import passage_text

from .absorb import split_update
from .core import Agent, new_edit_id
from .documents import Document, chunk_text, read_documents
from .errors import BadInput, Cancelled
from .events import (DocumentRead, EditCommitted, EditRejected, Emit, Message, ProbeResult, ProbeSummary,
                     RetentionRow, SelfEditProposed, SelfEditToken, Stage, TrainStep, ignore)
from .memory import Edit
from .replay import replay_mix
from .routing import Pending


@dataclass
class IngestOptions:
    force: bool = False
    family: str | None = None      # prompt family; None = config
    samples: int | None = None     # self-edits per chunk; None = config
    guard: bool | None = None      # None = config


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
        nll = _mean(self.agent.answer_nll([q for q, _ in probes], [a for _, a in probes], pending)) if probes else 0.0
        for r in scored["rows"]:
            self.emit(ProbeResult(phase, doc_id, r["question"], r["gold"], r["answer"], r["correct"], r["f1"]))
        self.emit(ProbeSummary(phase, doc_id, scored["accuracy"], scored["f1"], nll, len(probes)))
        return scored, nll

    def one(self, doc: Document) -> Outcome:
        t0 = time.time()
        agent, cfg, emit = self.agent, self.cfg, self.emit
        student, teacher = agent.student, agent.teacher
        tok = student.tokenizer
        chunks = chunk_text(doc.text, lambda s: len(tok(s, add_special_tokens=False).input_ids), cfg.ingest.chunk_tokens)
        probes, origin = list(doc.probes), "given"
        if not probes:
            emit(Stage("probes", "the teacher writes probe questions", total=len(chunks)))
            origin = "teacher"
            for chunk in chunks:
                self.check_cancel()
                probes += teacher.make_probes(doc.title, chunk, cfg.ingest.probes_per_doc)
            probes = probes[: cfg.ingest.probes_per_doc * max(1, len(chunks))]
            if not probes:
                emit(Message("warning", "the teacher wrote no usable probe questions; the edit is not guarded"))
        emit(DocumentRead(doc.doc_id, doc.title, doc.source, len(chunks), len(probes)))
        questions, golds = [q for q, _ in probes], [a for _, a in probes]

        before, nll_before = self.probe_phase("before", doc.doc_id, probes)

        family = self.opts.family or cfg.teacher.family
        k = self.opts.samples or cfg.teacher.samples
        emit(Stage("generate", f"{k} {family} self-edit(s) for {len(chunks)} chunk(s)", total=k * len(chunks)))
        proposals, texts, directives = [], [], {}
        for ci, chunk in enumerate(chunks):
            self.check_cancel()

            def on_text(_p: int, s: int, text: str, ci: int = ci) -> None:
                self.check_cancel()
                emit(SelfEditToken(ci, s, text))

            for si, se in enumerate(teacher.propose(doc.title, chunk, k=k, family=family, on_text=on_text)):
                emit(SelfEditProposed(ci, si, se.family, tuple(se.texts), dict(se.directives)))
                proposals.append((ci, si, se.family, se.completion, list(se.texts)))
                texts.extend(t for t in se.texts if t not in texts)
                directives = directives or dict(se.directives)
        route = agent.update_mode == "route"  # a fresh adapter for this document alone: nothing to replay
        settings = cfg.train
        if directives and cfg.ingest.use_directives:
            settings = replace(settings, **{k: v for k, v in directives.items() if hasattr(settings, k)})
        strategy = "none" if route else cfg.replay.strategy
        stream = agent.memory.training_stream() if strategy != "none" else []  # every text learned: read only if used
        replay = replay_mix(strategy, stream, cfg.replay.capacity, cfg.replay.ratio, len(texts),
                            cfg.replay.seed + agent.memory.next_seq())

        old_probes = self.retention_probes()
        st = agent.memory.state()
        head_edit = next((e for e in reversed(st.edits) if e.kind == "commit" and e.adapter_id == st.head), None)
        old_before = {d: (head_edit.retention.get(d) if head_edit and d in head_edit.retention else None)
                      for d in old_probes}
        missing = {d: p for d, p in old_probes.items() if old_before[d] is None}
        old_before.update({d: s["accuracy"] for d, s in agent.score_each(missing).items()})

        snapshot = student.state()
        pending = None
        try:
            own = [passage_text(doc.title, c, cfg.parse) for c in chunks]
            planned, side = split_update(texts, own, cfg.absorb)  # [absorb] lines: the lines beside the passage?
            beside = f" ({len(side)} beside the passage, weight {settings.side_weight:g})" if side else ""
            anchor = f" + {len(replay.anchor)} anchor" if replay.anchor else ""
            what = "a fresh adapter for this document" if route else f"+ {len(replay.texts)} replay{anchor}"
            emit(Stage("train", f"{len(texts)} texts{beside} {what}, {settings.epochs} epochs, lr {settings.lr:g}"))
            if route:
                student.reset()

            def on_step(step: int, total: int, epoch: int, loss: float) -> None:
                self.check_cancel()
                emit(TrainStep(step, total, epoch, loss))

            result = student.absorb(planned, settings, replay=replay.texts, on_step=on_step, anchor=replay.anchor,
                                    side=side)
            self.check_cancel()
            if route:
                pending = Pending(doc.doc_id, agent.memory.embed(chunks), student.state())
            after, nll_after = self.probe_phase("after", doc.doc_id, probes, pending)
            old_after = {}
            if old_probes:
                emit(Stage("retention", f"earlier documents ({sum(map(len, old_probes.values()))} probes)"))
                old_after = {d: s["accuracy"] for d, s in agent.score_each(old_probes, pending).items()}
            self.check_cancel()
        except BaseException:
            student.load(snapshot)
            raise

        guard = cfg.ingest.guard if self.opts.guard is None else self.opts.guard
        ok, reason = judge(before["accuracy"], after["accuracy"], nll_before, nll_after, old_before, old_after,
                           cfg.ingest.guard_tolerance, len(probes))
        if not guard and not ok:
            ok, reason = True, f"guard off: kept although {reason}"
        edit = Edit(edit_id=new_edit_id(), seq=agent.memory.next_seq(), kind="commit" if ok else "reject",
                    doc_id=doc.doc_id, title=doc.title, parent_adapter=st.head, created=time.time(),
                    before=before["accuracy"], after=after["accuracy"], nll_before=nll_before, nll_after=nll_after,
                    reason=reason,
                    info={"update": agent.update_mode, "family": family, "samples": k, "texts": len(texts),
                          "replay": len(replay.texts), "anchor": len(replay.anchor), "steps": result.steps,
                          "losses": [round(x, 4) for x in result.losses],
                          "train": asdict(settings), "source": doc.source, "probe_origin": origin})
        answers = [{"question": q, "gold": g, "before": b["answer"], "after": a["answer"],
                    "before_correct": b["correct"], "after_correct": a["correct"]}
                   for q, g, b, a in zip(questions, golds, before["rows"], after["rows"])]
        if not ok:
            student.load(snapshot)
            edit.seconds = time.time() - t0
            agent.memory.log(edit)
            emit(EditRejected(edit.edit_id, doc.doc_id, edit.before, edit.after, reason))
            return self._outcome(edit, "rejected", result, answers)

        emit(Stage("commit", edit.edit_id))
        edit.adapter_id = agent.adapters.new_id()
        if pending:
            student.load(pending.state)
        student.save(agent.adapters, edit.adapter_id,
                     {"edit_id": edit.edit_id, "doc_id": doc.doc_id, "lora": asdict(cfg.lora)})
        if pending:
            student.reset()  # route: the student rests at the base; questions load their document's adapter
        agent.memory.add_document(edit.edit_id, doc, chunks, probes, origin)
        agent.memory.add_selfedits(edit.edit_id, doc.doc_id, proposals)
        agent.memory.add_training(edit.edit_id, edit.seq, texts)
        # a document without probes has no accuracy to track: it stays out of the forgetting matrix
        edit.retention = {**old_after, **({doc.doc_id: after["accuracy"]} if probes else {})}
        edit.seconds = time.time() - t0
        agent.memory.log(edit)  # the commit point
        emit(EditCommitted(edit.edit_id, doc.doc_id, edit.adapter_id, edit.before, edit.after, edit.seconds, reason))
        emit(RetentionRow(edit.edit_id, dict(edit.retention)))
        return self._outcome(edit, "committed", result, answers)

    @staticmethod
    def _outcome(edit: Edit, status: str, result, answers: list) -> Outcome:
        return Outcome(edit.edit_id, edit.doc_id, edit.title, status, edit.before, edit.after, edit.nll_before,
                       edit.nll_after, round(edit.seconds, 2), edit.reason, edit.adapter_id, result.steps,
                       edit.info["texts"], answers)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0
