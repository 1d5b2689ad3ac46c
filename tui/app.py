"""The seal-agent terminal UI: feed documents, watch the student learn, ask it, roll it back.

Nothing heavy is imported here: the agent (chromadb, torch, the models) is opened in a worker thread after the
first paint, and the models load on first use. Every model job runs in a thread worker that posts typed messages
(agent.events wrapped in ``AgentEvent``) back to the UI.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import traceback
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input, TabbedContent, TabPane

from agent import events as ev
from agent.errors import Cancelled, SealError

from .commands import SealCommands
from .messages import AgentEvent, AgentFailed, AgentReady, Answer, JobDone, StoreChanged
from .screens import ConfirmScreen, FilePicker, PasteScreen
from .store import one_line, read_store, write_inbox
from .widgets import ArcPane, AskPane, DocumentsPane, ForgettingPane, HistoryPane, LearnPane, StatusLine

if TYPE_CHECKING:
    from agent.config import Config

TABS = Binding.Group("Tabs", compact=True)
RETRY_OPEN_S = 1.0   # how often a home in use by another process is tried again
QUIT_GRACE_S = 3.0   # how long quitting waits for a job thread to notice the cancel flag


def open_agent(cfg: "Config"):
    from agent.core import Agent  # torch, transformers, chromadb: in the worker, after the first paint
    return Agent(cfg)


class SealApp(App):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))
    TITLE = "seal-agent"
    NOTIFICATION_TIMEOUT = 4  # s (errors ask for longer); shown at the top right (app.tcss)
    COMMANDS = App.COMMANDS | {SealCommands}
    BINDINGS = [
        Binding("1", "tab('documents')", "Documents", group=TABS),
        Binding("2", "tab('learn')", "Learn", group=TABS),
        Binding("3", "tab('history')", "History", group=TABS),
        Binding("4", "tab('forgetting')", "Forgetting", group=TABS),
        Binding("5", "tab('ask')", "Ask", group=TABS),
        Binding("6", "tab('arc')", "ARC", group=TABS),
        Binding("ctrl+o", "add_file", "Open"),
        Binding("ctrl+n", "paste", "Paste"),
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, cfg: "Config", agent_factory: Callable[["Config"], Any] | None = None,
                 arc_loader: Callable[[], tuple[Any, Any]] | None = None) -> None:
        """``arc_loader() -> (model, tokenizer)``: the student for ARC's test-time training (default: the configured
        student model, loaded on the first solve)."""
        super().__init__()
        self.cfg = cfg
        self.agent_factory = agent_factory or open_agent
        self.arc_loader = arc_loader
        self.arc_model: tuple[Any, Any] | None = None
        self.agent: Any = None
        self.ready = threading.Event()
        self.open_error = ""
        self.cancel_event = threading.Event()
        self.job_idle = threading.Event()                   # set while no job thread runs
        self.job_idle.set()
        self.job: tuple[str, str] | None = None            # (kind, label) of the model job running
        self.queue: list[tuple[str, str, Callable]] = []   # ingests waiting: (key, label, fn)
        self.ingests = 0                                   # ingests started: names the running one's rows
        self.sub_title = str(cfg.home)

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="documents", id="tabs"):
            with TabPane("Documents", id="documents"):
                yield DocumentsPane(id="documents-pane")
            with TabPane("Learn", id="learn"):
                yield LearnPane(id="learn-pane")
            with TabPane("History", id="history"):
                yield HistoryPane(id="history-pane")
            with TabPane("Forgetting", id="forgetting"):
                yield ForgettingPane(id="forgetting-pane")
            with TabPane("Ask", id="ask"):
                yield AskPane(id="ask-pane")
            with TabPane("ARC", id="arc"):
                yield ArcPane(id="arc-pane")
        yield StatusLine(id="status")
        yield Footer()

    # ---- opening the store --------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.query_one("#docs").focus()
        self.call_after_refresh(lambda: self.run_worker(self._open_thread, thread=True, group="open",
                                                        exit_on_error=False))

    def _open_thread(self) -> None:
        """Open the store; while another seal-agent process holds the home (a CLI ingest), wait and retry."""
        import time as _time
        waiting = False
        try:
            while True:
                try:
                    agent = self.agent_factory(self.cfg)
                    break
                except SealError as e:
                    if "in use by another seal-agent process" not in str(e) or self.cancel_event.is_set():
                        raise
                    if not waiting:
                        waiting = True
                        self.call_from_thread(self.status.show, store=f"waiting: {self.cfg.home} is in use by "
                                              "another seal-agent process; it opens when that ends")
                    _time.sleep(RETRY_OPEN_S)
            agent.emit = self.emit
            self.agent = agent
            self.post_message(AgentReady())
        except Exception as e:  # noqa: BLE001 - shown as a notification, never a traceback
            self.open_error = _one_line_error(e)
            self.post_message(AgentFailed(self.open_error))
        finally:
            self.ready.set()

    def emit(self, event: ev.Event) -> None:
        """The agent's emitter (called from worker threads)."""
        self.post_message(AgentEvent(event))

    def on_agent_ready(self, _m: AgentReady) -> None:
        self.status.show(store=f"store open at {self.cfg.home} · models load on first use")
        self.refresh_store()

    def on_agent_failed(self, m: AgentFailed) -> None:
        self.status.show(store=f"store not open: {m.error}")
        self.notify(m.error, title="Cannot open the store", severity="error", timeout=30)

    def refresh_store(self) -> None:
        if self.agent is not None:
            self.run_worker(self._read_thread, thread=True, group="read", exclusive=True, exit_on_error=False)

    def _read_thread(self) -> None:
        try:
            self.post_message(StoreChanged(read_store(self.agent)))
        except Exception as e:  # noqa: BLE001
            self.notify(_one_line_error(e), title="Reading the store", severity="error")  # posts: thread-safe

    def notify(self, message: str, *, title: str = "", severity: str = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications carry file names and error text: not Rich markup unless asked ("[train]" stays)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_store_changed(self, m: StoreChanged) -> None:
        view = m.view
        self.query_one(DocumentsPane).set_rows(view.documents)
        self.query_one(HistoryPane).set_rows(view.history)
        unprobed = frozenset(d.doc_id for d in view.documents if not d.probes and d.status != "rejected")
        self.query_one(ForgettingPane).set_matrix(view.matrix, view.metrics, unprobed)
        active = sum(1 for d in view.documents if d.status == "active")
        where = ("an adapter per document, questions routed" if view.mode == "route"
                 else f"student at {view.head or 'the base model'}")
        self.status.show(store=f"{active} document(s) learned · {where}")

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    # ---- model jobs (one at a time, in a thread) ---------------------------------------------------------------
    # Not exclusive=True: cancelling a thread worker does not stop its thread, so a second model job would run
    # beside the first on the same model. A job is refused (or an ingest queued) while another runs instead.
    def start_job(self, kind: str, label: str, fn: Callable, *args) -> bool:
        if self.job is not None:
            self.notify(f"Busy: {self.job[1]}. Wait for it" + (", or Esc to cancel." if self.job[0] == "ingest"
                                                                 else "."), severity="warning")
            return False
        self.job = (kind, label)
        self.job_idle.clear()
        self.cancel_event.clear()
        self.status.show(job=label, detail="")
        self.query_one(LearnPane).set_running(kind == "ingest")
        self.refresh_bindings()
        self.run_worker(partial(self._job_thread, kind, label, fn, *args), thread=True, group="model",
                        name=kind, exit_on_error=False)
        return True

    def _job_thread(self, kind: str, label: str, fn: Callable, *args) -> None:
        self.ready.wait()
        try:
            if self.agent is None:
                raise SealError(self.open_error or "the store is not open")
            result = fn(*args)
            self.post_message(JobDone(kind, label, result=result))
        except Cancelled as e:
            self.post_message(JobDone(kind, label, error=str(e), cancelled=True))
        except Exception as e:  # noqa: BLE001 - SealError and anything else: a notification
            if not isinstance(e, SealError):
                self.log.error(traceback.format_exc())
            self.post_message(JobDone(kind, label, error=_one_line_error(e)))
        finally:
            self.job_idle.set()

    def on_job_done(self, m: JobDone) -> None:
        self.job = None
        self.status.show(job="", detail="")
        self.query_one(LearnPane).set_running(False)
        self.refresh_bindings()
        if m.kind == "ingest":
            self.query_one(DocumentsPane).finish(self.ingest_key)
            self.ingest_done(m)
        elif m.error:
            self.notify(m.error, title=f"{m.kind.capitalize()} failed", severity="error", timeout=10)
            if m.kind == "arc":
                self.query_one(ArcPane).stage(f"Failed: {one_line(m.error, 70)}")
        elif m.kind == "rollback":
            if m.result.get("mode") == "route":
                self.notify(f"Rolled back {', '.join(m.result['undone'])}: questions are no longer routed to "
                            f"{one_line(', '.join(m.result.get('titles', [])), 80)}.", title="Rollback")
            else:
                self.notify(f"Rolled back {', '.join(m.result['undone'])}; the student is at {m.result['head']}.",
                            title="Rollback")
            self.refresh_store()
        elif m.kind == "arc":
            self.query_one(ArcPane).show_result(m.result)
            solved = m.result["runs"][m.result["best"]]["solved"] if m.result["runs"] else None
            self.notify(f"ARC task {one_line(m.result['task']['id'], 40)}: "
                        + {True: "solved", False: "not solved", None: "predicted (no expected output)"}[solved],
                        title="ARC")
        elif m.kind == "probe":
            self.query_one(DocumentsPane).set_now(m.result)
            self.notify(f"Probed {len(m.result)} document(s) with the current student.", title="Probe")
        if self.queue and self.job is None:
            key, label, fn = self.queue.pop(0)
            self.query_one(DocumentsPane).set_pending(key, "", None)
            self._start_ingest(label, fn)

    def ingest_done(self, m: JobDone) -> None:
        learn = self.query_one(LearnPane)
        if m.cancelled:
            self.notify("Cancelled: nothing was committed.", title="Ingest", severity="warning")
            learn.stage(f"Cancelled: {m.label} (nothing was committed)")
        elif m.error:
            self.notify(m.error, title="Ingest failed", severity="error", timeout=10)
            learn.stage(f"Failed: {one_line(m.error, 70)}")
        else:
            for o in m.result:
                ok = o.status == "committed"
                self.notify(f"'{one_line(o.title, 40)}': probe accuracy {o.before:.2f} → {o.after:.2f}"
                            + ("" if ok else f" ({one_line(o.reason, 80)})"),
                            title="Learned" if ok else "Rejected by the guard", severity="information" if ok
                            else "warning")
            learn.stage(f"Done: {m.label}")
        if self.agent is None:  # nothing to read: the finished job's rows go now
            docs = self.query_one(DocumentsPane)
            docs.set_rows(docs.rows)
        self.refresh_store()

    # ---- ingest ----------------------------------------------------------------------------------------------
    def _ingest_paths(self, paths: list[Path]):
        from agent.ingest import Ingest, IngestOptions
        return Ingest(self.agent, IngestOptions(), emit=self.emit, cancel=self.cancel_event).run(paths)

    def _ingest_text(self, text: str):
        return self._ingest_paths([write_inbox(self.cfg.home, text)])

    def enqueue(self, label: str, fn: Callable) -> None:
        if self.job is not None:
            key = f"q{len(self.queue)}-{id(fn)}"
            self.queue.append((key, label, fn))
            self.query_one(DocumentsPane).set_pending(key, label, "queued")
            self.notify(f"Queued '{label}': it is learned after {self.job[1]}.")
        else:
            self._start_ingest(label, fn)

    @property
    def ingest_key(self) -> str:
        """The Documents list's key for the rows of the ingest running (or last run)."""
        return f"ingest{self.ingests}"

    def _start_ingest(self, label: str, fn: Callable) -> None:
        if self.start_job("ingest", f"learning {label}", fn):
            self.ingests += 1
            self.query_one(DocumentsPane).set_pending(self.ingest_key, label, "learning")
            self.query_one(LearnPane).reset(label)
            self.action_tab("learn")

    def learn_path(self, text: str) -> None:
        path = Path(text).expanduser()
        self.enqueue(path.name or str(path), partial(self._ingest_paths, [path]))

    def learn_text(self, text: str | None) -> None:
        if text and text.strip():
            title = text.strip().splitlines()[0].lstrip("#").strip() or "pasted text"
            self.enqueue(one_line(title, 40), partial(self._ingest_text, text))

    # ---- events from jobs -----------------------------------------------------------------------------------
    def on_agent_event(self, m: AgentEvent) -> None:
        e = m.event
        if self.job is not None and self.job[0] == "arc":
            self.query_one(ArcPane).handle(e)
            if isinstance(e, ev.TrainStep):
                self.status.show(detail=f"ARC train step {e.step}/{e.total} · loss {e.loss:.3f}")
            elif isinstance(e, ev.Stage):
                self.status.show(detail=f"{e.name}: {e.detail}" if e.detail else e.name)
            return
        self.query_one(LearnPane).handle(e)
        if isinstance(e, ev.Stage):
            self.status.show(detail=f"{e.name}: {e.detail}" if e.detail else e.name)
        elif isinstance(e, ev.TrainStep):
            self.status.show(detail=f"train step {e.step}/{e.total} · loss {e.loss:.3f}")
        elif isinstance(e, ev.SelfEditToken):
            self.status.show(detail=f"teacher writing a self-edit: {len(e.text_so_far)} chars")
        elif isinstance(e, ev.DocumentsQueued):
            self.query_one(DocumentsPane).plan(self.ingest_key, list(e.documents))
        elif isinstance(e, ev.DocumentRead):
            self.query_one(DocumentsPane).mark(self.ingest_key, e.doc_id, e.title, "learning")
        elif isinstance(e, ev.EditCommitted):
            self.query_one(DocumentsPane).mark(self.ingest_key, e.doc_id, "", "learned")
        elif isinstance(e, ev.EditRejected):
            self.query_one(DocumentsPane).mark(self.ingest_key, e.doc_id, "", "rejected")
        elif isinstance(e, ev.Message):
            self.notify(e.text, severity="warning" if e.level == "warning" else "information")

    # ---- ask ---------------------------------------------------------------------------------------------------
    def ask(self, question: str) -> None:
        question = question.strip()
        if not question:
            self.notify("Type a question first.", severity="warning")
            return
        if self.start_job("ask", "answering a question", self._ask_thread, question):
            self.query_one(AskPane).waiting(question)

    def _ask_thread(self, question: str) -> None:
        for who, base in (("student", False), ("base", True)):
            via = self.agent.routes([question])[0] if not base and self.agent.update_mode == "route" else None
            self.post_message(Answer(who, question, self.agent.ask([question], base=base)[0], via))

    def on_answer(self, m: Answer) -> None:
        self.query_one(AskPane).answer(m.who, m.text, m.via)

    # ---- ARC ---------------------------------------------------------------------------------------------------
    def solve_arc(self, text: str) -> None:
        """Show the task of an ARC file and solve it with the default configuration (a model job)."""
        from agent.errors import BadInput
        from agent.lab.arc.tasks import read_task_file, task_json
        if not text.strip():
            self.notify("Type the path of an ARC task file (JSON) first.", severity="warning")
            return
        try:
            task = read_task_file(Path(text.strip()).expanduser())
        except BadInput as e:
            self.notify(str(e), title="ARC", severity="error", timeout=10)
            return
        if self.job is not None:
            self.start_job("arc", "", lambda: None)  # refused while busy: says what runs
            return
        self.query_one(ArcPane).show_task(task_json(task))
        self.start_job("arc", f"solving ARC task {one_line(task.id, 30)}", self._arc_thread, task)

    def _arc_student(self):
        if self.arc_model is None:
            if self.arc_loader is not None:
                self.arc_model = self.arc_loader()
            else:
                from agent.models import load_model
                self.arc_model = load_model(self.cfg.models.student, self.cfg.home, self.cfg.models, "student")
        return self.arc_model

    def _arc_thread(self, task):
        from agent.lab.arc.jobs import solve_task
        return solve_task(task, self._arc_student, emit=self.emit)

    # ---- rollback ------------------------------------------------------------------------------------------------
    def confirm_rollback(self, row: dict) -> None:
        later = sum(1 for r in self.query_one(HistoryPane).rows if r["kind"] == "commit" and r["status"] == "active"
                    and r["seq"] > row["seq"])
        question = (f"Roll back {row['edit_id']} ('{one_line(row['title'], 40)}')"
                    + (f" and the {later} later edit(s)" if later else "")
                    + "?\nThe student returns to the adapter it had before it. The log keeps the history.")

        def done(yes: bool | None) -> None:
            if yes:
                self.start_job("rollback", f"rolling back {row['edit_id']}", self.agent.rollback, row["edit_id"])

        self.push_screen(ConfirmScreen(question, yes="Roll back"), done)

    # ---- actions --------------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.job is not None and self.job[0] == "ingest"
        return True

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        focus = {"documents": "#docs", "learn": "#probes", "history": "#history-table", "ask": "#question",
                 "arc": "#arc-path"}.get(name)
        if focus:
            self.query_one(focus).focus()

    def action_add_file(self) -> None:
        self.push_screen(FilePicker(Path.cwd()), lambda p: p and self.learn_path(str(p)))

    def action_paste(self) -> None:
        self.push_screen(PasteScreen(), self.learn_text)

    def action_learn_sample(self) -> None:
        import agent
        self.learn_path(str(Path(agent.__file__).parent / "data" / "sample.json"))

    def action_cancel(self) -> None:
        if self.job is None or self.job[0] != "ingest":
            return
        self.cancel_event.set()
        for key, _label, _fn in self.queue:
            self.query_one(DocumentsPane).set_pending(key, "", None)
        self.queue.clear()
        self.status.show(detail="cancelling: the edit in progress will not be committed")
        self.notify("Cancelling: the edit in progress will not be committed.", title="Cancel")

    def action_probe(self) -> None:
        self.start_job("probe", "probing every document", lambda: self.agent.probe(self.emit))

    def action_rollback(self) -> None:
        self.action_tab("history")
        self.query_one(HistoryPane).action_rollback()

    def action_focus_path(self) -> None:
        self.action_tab("documents")
        self.query_one("#path", Input).focus()

    async def action_quit(self) -> None:
        self.cancel_event.set()  # an ingest in progress stops at its next step; nothing is committed
        self.exit()

    def on_unmount(self) -> None:
        self.cancel_event.set()
        if self.agent is not None and self.job is None:
            self.agent.close()


def _one_line_error(e: BaseException) -> str:
    from agent.errors import describe
    return describe(e)


def run(cfg: "Config") -> None:
    """Open the app on ``cfg.home`` (``seal-agent`` with no command, or ``seal-agent tui``)."""
    app = SealApp(cfg)
    # Our own loop: asyncio.run() would wait at exit for every worker thread, and a model call that cannot be
    # interrupted (a generation, loading a model) would keep ^q waiting for a minute.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app.run(loop=loop)
    if not app.job_idle.wait(QUIT_GRACE_S):
        # The cancel flag is set, so nothing will be committed; the store is built to survive a killed run (the
        # edit-log entry is the commit point, leftovers are swept), so end the process instead of waiting.
        sys.stderr.write("seal-agent: stopped the job in progress; nothing was committed\n")
        sys.stderr.flush()
        os._exit(0)
    loop.run_until_complete(loop.shutdown_default_executor())  # the store-opening thread, if still running
    loop.close()
