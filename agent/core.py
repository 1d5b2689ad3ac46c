"""The Agent: opens the store, loads the models lazily and wires teacher and student (the only place that does)."""
from __future__ import annotations

import secrets
import time
from dataclasses import asdict

from student.adapters import AdapterError, AdapterStore
from student.grading import Grade, grade, mean_grade
from student.student import Student
from teacher.backend import TransformersBackend
from teacher.selfedit import Teacher

from .config import Config
from .errors import BadInput, StoreError
from .events import Emit, Stage, ignore
from .memory import Edit, Memory
from .models import load_model, load_teacher
from .paths import home_paths
from .routing import DocumentRouting, Pending


def new_edit_id(prefix: str = "e") -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class Agent:
    def __init__(self, cfg: Config, create: bool = True, student: Student | None = None,
                 teacher: Teacher | None = None):
        """student / teacher: already-built ones (tests, embedding in other programs); else loaded on first use."""
        self.cfg = cfg
        self.memory = Memory(cfg.home, create=create, embedder=cfg.models.embedder, url=cfg.memory.url)
        paths = home_paths(cfg.home)
        self.adapters = AdapterStore(paths.student_adapters)
        self.teacher_adapters = AdapterStore(paths.teacher_adapters)
        self.routing = DocumentRouting(self.memory, self.adapter_state, cfg.ingest.route_threshold)
        self._student: Student | None = student
        self._teacher: Teacher | None = teacher
        self.emit: Emit = ignore
        try:
            self.sweep()  # every command that opens the store for writing clears what a killed run left
        except BaseException:
            self.memory.close()
            raise
        if student is not None:
            self._load_head()

    def close(self) -> None:
        self.memory.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- models ---------------------------------------------------------------------------------------------
    @property
    def student(self) -> Student:
        if self._student is None:
            self.emit(Stage("load", f"student model ({self.cfg.models.student})"))
            model, tok = load_model(self.cfg.models.student, self.cfg.home, self.cfg.models)
            self._student = Student(model, tok, self.cfg.lora, self.cfg.answer)
            self._load_head()
        return self._student

    @property
    def update_mode(self) -> str:
        """continue | route: fixed by the store's first committed document (config ingest.update before it)."""
        first = next((e for e in self.memory.state().edits if e.kind == "commit"), None)
        return first.info.get("update", "continue") if first else self.cfg.ingest.update

    def _load_head(self) -> None:
        """continue: the head adapter in force; route: the base (each question loads its document's adapter)."""
        head = self.memory.state().head
        if not head or self.update_mode == "route":
            self._student.reset()
            return
        self._student.load(self.adapter_state(head))

    def adapter_state(self, adapter_id: str) -> dict:
        """A stored student adapter's weights, refused (one line) if trained with other LoRA settings, damaged
        or missing (StoreError naming the adapter's file)."""
        try:
            lora = self.adapters.meta(adapter_id).get("lora")
            if lora and lora != asdict(self.cfg.lora):
                raise BadInput(f"adapter {adapter_id} was trained with lora {lora}; "
                               f"the config says {asdict(self.cfg.lora)}")
            return self.adapters.load_state(adapter_id)
        except AdapterError as e:
            raise StoreError(str(e)) from None

    @property
    def teacher(self) -> Teacher:
        if self._teacher is None:
            self.emit(Stage("load", f"teacher model ({self.cfg.models.teacher})"))
            model, tok = load_teacher(self.cfg.home, self.cfg.models, self.cfg.models.teacher_adapter)
            self._teacher = Teacher(TransformersBackend(model, tok), tok, self.cfg.teacher, self.cfg.parse)
        return self._teacher

    @property
    def tokenizer(self):
        return self.student.tokenizer

    # ---- housekeeping ---------------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Remove what a killed run left: temp adapter folders, adapters and records no log entry names (not in a
        read-only snapshot: a writer holds the home)."""
        if self.memory.read_only:
            return
        self.adapters.clean_tmp()
        edits = self.memory.state().edits
        named = {e.adapter_id for e in edits} | {e.parent_adapter for e in edits}
        unnamed = [a for a in self.adapters.ids() if a not in named]
        # one run writes at a time and each writing command sweeps first: a killed commit leaves at most one
        # adapter no log entry names. More means the log was lost: delete nothing on the strength of it.
        if len(unnamed) > 1:
            raise StoreError(f"{self.adapters.root}: {len(unnamed)} adapters are named by no edit-log entry; the "
                             "edit log looks lost, so nothing was deleted (the store is corrupt)")
        for adapter_id in unnamed:
            self.adapters.remove(adapter_id)
        self.memory.sweep()

    # ---- questions --------------------------------------------------------------------------------------------
    def _routed(self, questions: list[str], base: bool, pending: Pending | None, work) -> list:
        """work(positions, base) under the adapter in force, or once per routed adapter (update = route)."""
        if base or self.update_mode != "route":
            return work(list(range(len(questions))), base)
        return self.routing.run(self.student, questions, work, pending)[0]

    def ask(self, questions: list[str], base: bool = False, pending: Pending | None = None) -> list[str]:
        """Closed-book answers (pending: a document being learned, routed to beside the committed ones)."""
        return self._routed(questions, base, pending,
                            lambda idx, b: self.student.answer([questions[i] for i in idx], base=b))

    def answer_nll(self, questions: list[str], golds: list[str], pending: Pending | None = None) -> list[float]:
        """Mean per-token NLL of each gold answer, each question under the adapter that answers it."""
        return self._routed(questions, False, pending, lambda idx, b: self.student.answer_nll(
            [questions[i] for i in idx], [golds[i] for i in idx], base=b))

    def routes(self, questions: list[str]) -> list[str]:
        """update = route: the title of the document whose adapter answers each question ("" = the base)."""
        if self.update_mode != "route":
            return [""] * len(questions)
        titles = {e.adapter_id: e.title for e in self.memory.state().active()}
        return [titles.get(t, "") if t else "" for t in self.routing.targets(questions)]

    def score(self, probes: list[tuple[str, str]], pending: Pending | None = None) -> dict:
        """Answer probes closed-book and grade them: accuracy ('contains' on the extracted answer), F1, EM, rows."""
        return self.score_each({"": probes}, pending)[""]

    def score_each(self, probes: dict[str, list[tuple[str, str]]], pending: Pending | None = None) -> dict[str, dict]:
        """:meth:`score` for several documents' probes (doc_id -> probes), answered in one pass (one routing)."""
        flat = [p for ps in probes.values() for p in ps]
        answers = self.ask([q for q, _ in flat], pending=pending) if flat else []
        out, at = {}, 0
        for doc_id, ps in probes.items():
            mine, at = answers[at:at + len(ps)], at + len(ps)
            grades = [grade(a, g) for a, (_, g) in zip(mine, ps)]
            m = mean_grade(grades) if ps else Grade(0.0, 0.0, 0.0)  # no probes: 0, not NaN
            rows = [{"question": q, "gold": g, "answer": a, "correct": gr.contains >= 1.0, "f1": gr.f1}
                    for (q, g), a, gr in zip(ps, mine, grades)]
            out[doc_id] = {"accuracy": m.contains, "f1": m.f1, "em": m.em, "n": len(ps), "rows": rows}
        return out

    def probe(self, emit: Emit = ignore) -> list[dict]:
        """Every stored probe against the current student: one row per active document."""
        out = []
        docs = self.memory.documents()
        probes = self.memory.probes()
        for i, doc in enumerate(docs):
            emit(Stage("probe", doc["title"], total=len(docs)))
            s = self.score(probes.get(doc["doc_id"], []))
            edit = self.memory.find_edit(doc["edit_id"])
            out.append({"doc_id": doc["doc_id"], "title": doc["title"], "edit_id": doc["edit_id"],
                        "learned": edit.after if edit else None, **{k: s[k] for k in ("accuracy", "f1", "em", "n")}})
        return out

    # ---- history ----------------------------------------------------------------------------------------------
    def history(self) -> list[dict]:
        st = self.memory.state()
        return [{"edit_id": e.edit_id, "seq": e.seq, "kind": e.kind, "status": st.status.get(e.edit_id, ""),
                 "doc_id": e.doc_id, "title": e.title, "created": e.created, "seconds": round(e.seconds, 1),
                 "before": e.before, "after": e.after, "nll_before": e.nll_before, "nll_after": e.nll_after,
                 "adapter_id": e.adapter_id, "target": e.target, "reason": e.reason}
                for e in st.edits]

    def rollback(self, edit_id: str) -> dict:
        """Undo a committed edit and every later one: the student returns to the adapter it had before it."""
        st = self.memory.state()
        edit = self.memory.find_edit(edit_id)
        if edit is None and edit_id:  # a unique prefix of a committed edit's id
            matches = [e for e in st.edits if e.kind == "commit" and e.edit_id.startswith(edit_id)]
            if len(matches) > 1:
                raise BadInput(f"{edit_id}: matches {len(matches)} edits ({', '.join(e.edit_id for e in matches[:3])}"
                               f"{', …' if len(matches) > 3 else ''}); give more of the id")
            edit = matches[0] if matches else None
            edit_id = edit.edit_id if edit else edit_id
        if edit is None or edit.kind != "commit":
            raise BadInput(f"{edit_id}: no such committed edit (see: seal-agent history)")
        if st.status[edit_id] != "active":
            raise BadInput(f"{edit_id}: already {st.status[edit_id].replace('_', ' ')}")
        undone = [e.edit_id for e in st.active() if e.seq >= edit.seq]
        entry = Edit(edit_id=new_edit_id("r"), seq=self.memory.next_seq(), kind="rollback", target=edit_id,
                     adapter_id=edit.parent_adapter, parent_adapter=st.head, created=time.time(),
                     doc_id=edit.doc_id, title=edit.title, reason=f"undid {', '.join(undone)}")
        self.memory.log(entry)
        if self._student is not None:
            self._load_head()
        titles = [e.title for e in st.active() if e.edit_id in undone]
        return {"rollback": entry.edit_id, "undone": undone, "head": entry.adapter_id or "base",
                "mode": self.update_mode, "titles": titles}
