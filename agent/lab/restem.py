"""ReST-EM: the teacher's outer loop (SEAL's RL), one resumable command.

Round r (1..R):

1. E-step sampling: the current teacher (base + round r-1's policy adapter; the base alone for r = 1) writes K
   self-edits per training passage, all passages in few batched generate calls, seeded per round.
2. Rewards: each self-edit is absorbed by a fresh student LoRA and the passage's questions are answered
   closed-book, over S training seeds, through :func:`student.innerloop.evaluate`; a passage-only candidate per
   (passage, seed) is the baseline: reward = mean over seeds of metric(self-edit) - metric(passage-only)
   (:mod:`agent.restem_reward`).
3. Keep the best self-edit per passage if its reward is > 0 (``keep="positive"``: every positive one).
4. M-step: SFT of the teacher's policy adapter on prompt -> kept completion, loss on the completion only,
   continuing from round r-1's adapter (:mod:`teacher.policy`); saved as a new teacher version
   (``<home>/adapters/teacher/<id>``, a peft folder: ``--set models.teacher_adapter=ID`` and
   ``bench knowledge --conditions teacher:ID`` load it).
5. Optional quick held-out evaluation of the new teacher (``eval_passages``): one self-edit per held-out passage,
   gain over passage-only, reported per round (round 0 = the untrained teacher).

Teacher and student are separate models: the student (``models.student``) never changes. ``self_mode`` is SEAL's
single-model setting: round r's rewards are computed on a student that is the teacher's base with round r-1's
policy adapter merged into its weights (a separate copy; SEAL merges the generator after each round and uses it as
its own student), so the passage-only baselines are recomputed for every round.

Everything is written to ``out`` as it happens, atomically: ``run.json`` (settings; a re-run with other settings is
refused), ``split.json`` / ``heldout.json`` (the title split; ``heldout.json`` is a SQuAD file for ``bench
knowledge --data``), ``samples.jsonl`` (every sampled completion, so a resumed run uses the same ones),
``evals.jsonl`` (one line per absorbed candidate and seed), ``rewards.jsonl`` (one line per self-edit, as soon as
all its seeds are in), ``round-<r>.json`` (the round manifest with the M-step's adapter id) and ``results.json``.
A killed run continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from student.adapters import AdapterStore
from student.innerloop import Candidate
from teacher.backend import TransformersBackend
from teacher.config import PolicySettings
from teacher.parsing import passage_text
from teacher.policy import attach_policy, detach_policy, train_policy
from teacher.prompts import FAMILIES
from teacher.selfedit import Teacher, passage_share, self_edit_from_completion

from ..absorb import Material, fingerprint as absorb_fingerprint, plan, study_pairs
from .executor import EvaluateJob, make_executor
from .runlog import JsonlLog, atomic_write, check_run_file, teacher_identity, train_identity
from .squad import Passage, data_digest
from ..config import Config
from ..errors import BadInput
from ..models import free_memory, load_model, teacher_versions
from ..events import Emit, Message, Progress, Stage, TrainStep, ignore
from .restem_reward import KEEP_RULES, REWARDS, Score, keep, reward_of, seed_gains, stats
from .restem_split import HELDOUT_DATA, TRAIN_DATA, Split, make_split, squad_json
from ..util import nanmean

ENGINES = ("auto", "sequential", "batched")
Loader = Callable[[], tuple[Any, Any]]  # () -> (model, tokenizer)
OnRecord = Callable[[str, dict], None]  # (log name, record) after each record is written
HELDOUT_SEED = 1_000_003  # sampling seed of the held-out self-edits (the same for every teacher version)


@dataclass
class RestemOptions:
    data: Path = TRAIN_DATA
    eval_data: Path = HELDOUT_DATA
    rounds: int = 2
    passages: int = 50
    samples: int = 5
    seeds: int = 2
    reward: str = "contains"
    keep: str = "best"
    self_mode: bool = False
    family: Optional[str] = None             # None: the config's teacher.family
    eval_titles: tuple[str, ...] = ()
    eval_passages: int = 0                   # quick held-out evaluation per round (0 = none)
    out: Optional[Path] = None               # default runs/restem-<time>
    engine: str = "auto"
    group: int = 8                           # candidates per inner-loop call (adapters trained at once)
    gen_batch: int = 256                     # sequences per teacher generate call
    split_seed: int = 0
    fresh: bool = False                      # new training passages each round (the pool's next block)

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise BadInput(f"--reward {self.reward!r}: choose one of {', '.join(REWARDS)}")
        if self.keep not in KEEP_RULES:
            raise BadInput(f"--keep {self.keep!r}: choose one of {', '.join(KEEP_RULES)}")
        if self.family is not None and self.family not in FAMILIES:
            raise BadInput(f"--family {self.family!r}: choose one of {', '.join(FAMILIES)}")
        if self.engine not in ENGINES:
            raise BadInput(f"--engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if min(self.rounds, self.passages, self.samples, self.seeds, self.group, self.gen_batch) < 1 \
                or self.eval_passages < 0:
            raise BadInput("--rounds, --passages, --samples, --seeds, --group, --gen-batch must be >= 1")
        if self.out is None:
            self.out = Path("runs") / f"restem-{time.strftime('%Y%m%d-%H%M%S')}"


class TeacherModel:
    """The teacher's base model, with at most one policy version attached (as a trainable peft adapter)."""

    def __init__(self, load: Loader, store: AdapterStore, policy: PolicySettings, emit: Emit):
        self.load, self.store, self.policy, self.emit = load, store, policy, emit
        self.base = self.tokenizer = self.peft = None
        self.version: Optional[str] = None  # the attached version ("" = a fresh policy); None = nothing attached

    def _base(self):
        if self.base is None:
            self.emit(Stage("load", "teacher model"))
            self.base, self.tokenizer = self.load()
        return self.base

    def folder(self, version: str) -> Path:
        return self.store.weights_file(version).parent

    def attach(self, version: str):
        """The peft model of ``version`` ("" = a fresh policy: generates exactly like the base)."""
        if self.peft is not None and self.version == version:
            return self.peft
        self.detach()
        self.peft = attach_policy(self._base(), self.policy, self.folder(version) if version else None)
        self.version = version
        return self.peft

    def detach(self) -> None:
        if self.peft is not None:
            detach_policy(self.peft)
            self.peft, self.version = None, None

    def generator(self, version: str):
        """A model that samples like teacher ``version`` ("" = the base)."""
        if not version and self.peft is None:
            return self._base()
        return self.attach(version)


class StudentModel:
    """The student the rewards are computed on: ``models.student`` (never changed), or in self mode the teacher's
    base with a policy version merged into a separate copy."""

    def __init__(self, load_student: Loader, load_teacher: Loader, teacher: TeacherModel, self_mode: bool, emit: Emit):
        self.load_student, self.load_teacher, self.teacher = load_student, load_teacher, teacher
        self.self_mode, self.emit = self_mode, emit
        self.model = self.tokenizer = None
        self.version: Optional[str] = None

    def loader(self, version: str):
        """What loads the reward student of ``version``: in this process, :meth:`get` (the loaded model is kept
        between calls); pickled for a Ray worker, a plain function of the loaders and the version's folder."""
        return _RewardStudent(self, version)

    def get(self, version: str):
        version = version if self.self_mode else ""
        if self.model is not None and self.version == version:
            return self.model, self.tokenizer
        self.model = None
        free_memory()
        if not self.self_mode:
            self.emit(Stage("load", "student model"))
            self.model, self.tokenizer = self.load_student()
        else:
            self.emit(Stage("load", f"student = teacher base{' + ' + version + ' merged' if version else ''}"))
            model, self.tokenizer = self.load_teacher()
            if version:
                from peft import PeftModel
                model = PeftModel.from_pretrained(model, str(self.teacher.folder(version))).merge_and_unload()
                if hasattr(model, "peft_config"):
                    del model.peft_config
            self.model = model.eval()
        self.version = version
        return self.model, self.tokenizer


class _RewardStudent:
    """() -> (model, tokenizer) of the reward student of ``version``: the cached :class:`StudentModel` in this
    process; a fresh load (no cache, no teacher model) where it is unpickled."""

    def __init__(self, owner: Optional[StudentModel], version: str, load_student: Optional[Loader] = None,
                 load_teacher: Optional[Loader] = None, folder: Optional[Path] = None):
        self.owner, self.version = owner, version
        if owner is not None:
            load_student, load_teacher = owner.load_student, owner.load_teacher
            folder = owner.teacher.folder(version) if owner.self_mode and version else None
        self.load_student, self.load_teacher, self.folder = load_student, load_teacher, folder
        self.self_mode = owner.self_mode if owner is not None else load_student is None

    def __call__(self):
        if self.owner is not None:
            return self.owner.get(self.version)
        if not self.self_mode:
            return self.load_student()
        model, tok = self.load_teacher()
        if self.folder is not None:
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, str(self.folder)).merge_and_unload()
            if hasattr(model, "peft_config"):
                del model.peft_config
        return model.eval(), tok

    def __reduce__(self):
        return (_RewardStudent, (None, self.version, None if self.self_mode else self.load_student,
                                 self.load_teacher, self.folder))


def eval_key(rec: dict) -> tuple:
    return (rec["set"], rec["kind"], rec["round"], rec["student"], rec["passage"], rec["sample"], rec["seed"])


class Restem:
    """Set up with :meth:`prepare` (reads data, writes the split; loads no model), then :meth:`run`.

    ``load_teacher()`` / ``load_student()`` return (model, tokenizer) (defaults: the configured models; tests
    inject tiny ones); ``store`` holds the teacher versions (default ``<home>/adapters/teacher``);
    ``on_record(log, record)`` is called after each line written to samples / evals / rewards."""

    def __init__(self, cfg: Config, opts: RestemOptions, emit: Emit = ignore, load_teacher: Optional[Loader] = None,
                 load_student: Optional[Loader] = None, store: Optional[AdapterStore] = None,
                 on_record: Optional[OnRecord] = None, executor=None):
        self.cfg, self.opts, self.emit, self.on_record = cfg, opts, emit, on_record
        self.executor = executor or make_executor(cfg.run)  # [run] executor: where the rewards are evaluated
        self.out = Path(opts.out)
        self.family = opts.family or cfg.teacher.family
        self.policy = cfg.policy
        self.store = store or teacher_versions(cfg.home, create=True)
        load_teacher = load_teacher or self._loader(cfg.models.teacher, "teacher")
        load_student = load_student or self._loader(cfg.models.student, "student")
        self.teacher = TeacherModel(load_teacher, self.store, self.policy, emit)
        self.student = StudentModel(load_student, load_teacher, self.teacher, opts.self_mode, emit)
        self.seeds = [cfg.train.seed + s for s in range(opts.seeds)]
        self.split: Optional[Split] = None

    def _loader(self, spec: str, role: str) -> Loader:
        # a plain partial, not a closure over the run: Ray workers receive the loader, not the run
        return functools.partial(load_model, spec, self.cfg.home, self.cfg.models, role)

    # ---- setup ----------------------------------------------------------------------------------------------
    def prepare(self) -> "Restem":
        o = self.opts
        self.split = make_split(o.data, o.eval_data, o.passages, o.eval_titles, o.eval_passages, o.split_seed)
        if o.fresh:
            self.split.check_fresh(o.rounds)
        check_run_file(self.out / "run.json", self.fingerprint(), "ReST-EM run")
        atomic_write(self.out / "split.json",
                     json.dumps(self.split.describe(o.data, o.eval_data, o.rounds, o.fresh), indent=2) + "\n")
        atomic_write(self.out / "heldout.json", squad_json(self.split.heldout))
        self.samples = JsonlLog(self.out / "samples.jsonl", lambda r: (r["set"], r["round"], r["passage"]))
        self.evals = JsonlLog(self.out / "evals.jsonl", eval_key)
        self.rewards = JsonlLog(self.out / "rewards.jsonl", lambda r: (r["round"], r["passage"], r["sample"]))
        return self

    def fingerprint(self) -> dict:
        """What must not change between a run and its resumption (--rounds may grow; --eval-passages may change)."""
        c, o = self.cfg, self.opts
        asd = dataclasses.asdict
        teacher = teacher_identity(c.teacher, ("family", "samples", "probe_count"))
        return {"data": data_digest(self.split.train), "train_passages": [p.index for p in self.split.train],
                "train_titles": self.split.train_titles, "samples": o.samples, "seeds": self.seeds,
                "reward": o.reward, "keep": o.keep, "self": o.self_mode, "family": self.family,
                "gen_batch": o.gen_batch, "teacher": teacher, "parse": asd(c.parse), "lora": asd(c.lora),
                "train": train_identity(c.train), **absorb_fingerprint(c.absorb, c.train.side_weight),
                "answer": asd(c.answer),
                "policy": policy_identity(self.policy), "fresh": o.fresh,
                "models": {"teacher": c.models.teacher, "student": c.models.student, "dtype": c.models.dtype}}

    def _append(self, log: JsonlLog, name: str, record: dict) -> None:
        log.append(record)
        if self.on_record is not None:
            self.on_record(name, record)

    def round_passages(self, rnd: int) -> list[Passage]:
        return self.split.round_passages(rnd, self.opts.fresh)

    # ---- manifests ------------------------------------------------------------------------------------------
    def manifest_path(self, r: int) -> Path:
        return self.out / f"round-{r}.json"

    def manifest(self, r: int) -> Optional[dict]:
        path = self.manifest_path(r)
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # manifests are written atomically: only a hand edit gets here
            raise BadInput(f"{path}: not a readable round manifest ({e})") from None
        if not isinstance(doc, dict) or doc.get("round") != r or "status" not in doc:
            raise BadInput(f"{path}: not round {r}'s manifest (no round/status)")
        return doc

    def _write_manifest(self, r: int, doc: dict) -> None:
        atomic_write(self.manifest_path(r), json.dumps(doc, indent=2, default=str) + "\n")

    # ---- step 1: sampling -----------------------------------------------------------------------------------
    def sample(self, set_: str, rnd: int, version: str, passages: list[Passage], k: int, seed0: int) -> dict[int, dict]:
        """``k`` completions per passage from teacher ``version``, generated in fixed chunks (seed0 + chunk index)
        and persisted; chunks already in samples.jsonl are not generated again."""
        key = lambda p: (set_, rnd, p.index)  # noqa: E731
        per = max(1, self.opts.gen_batch // k)
        chunks = [passages[i: i + per] for i in range(0, len(passages), per)]
        todo = [(c, ch) for c, ch in enumerate(chunks) if any(key(p) not in self.samples for p in ch)]
        task = f"round {rnd}: self-edits" if set_ == "train" else f"held-out v{rnd}: self-edits"
        have = sum(1 for p in passages if key(p) in self.samples)
        if have:
            self.emit(Message("info", f"{task}: {have} of {len(passages)} passages already sampled (resumed)"))
        for done, (c, chunk) in enumerate(todo):
            self.emit(Progress(task, min(done * per, len(passages)), len(passages)))
            model = self.teacher.generator(version)
            tok = self.teacher.tokenizer
            teacher = Teacher(TransformersBackend(model, tok), tok, self.cfg.teacher, self.cfg.parse)
            t0 = time.perf_counter()
            edits = teacher.propose_many([(p.title, p.context) for p in chunk], k=k, family=self.family, seed=seed0 + c)
            secs = (time.perf_counter() - t0) / len(chunk)
            for p, es in zip(chunk, edits):
                if key(p) not in self.samples:
                    self._append(self.samples, "samples", {
                        "set": set_, "round": rnd, "passage": p.index, "teacher": version, "family": self.family,
                        "seed": seed0 + c, "seconds": secs, "prompt": es[0].prompt if es else "",
                        "completions": [e.completion for e in es]})
        if todo:
            self.emit(Progress(task, len(passages), len(passages)))
        return {p.index: self.samples.get(key(p)) for p in passages}

    # ---- step 2: rewards ------------------------------------------------------------------------------------
    def _texts(self, p: Passage, completion: str) -> list[str]:
        return self_edit_from_completion(completion, p.title, p.context, self.family, self.cfg.parse).texts

    def score(self, set_: str, rnd: int, sv: int, student_version: str, passages: list[Passage],
              samples: dict[int, dict], k: int) -> None:
        """Absorb every self-edit (and the passage-only baseline) for every seed; one evals.jsonl line each.

        Candidates are evaluated in fixed chunks of ``group`` (baselines first, then the edits by passage, sample,
        seed), so a resumed run batches them as an uninterrupted one would."""
        units: list[tuple[dict, Candidate]] = []
        tok = self.student.get(student_version)[1] if self.cfg.absorb.method == "distill" else None
        for p in passages:
            for s in self.seeds:
                head = {"set": set_, "kind": "passage", "round": -1, "student": sv, "passage": p.index, "sample": -1,
                        "seed": s}
                units.append((head, self._candidate(head, [p.text], p, s, tok)))
        for p in passages:
            for j, completion in enumerate(samples[p.index]["completions"][:k]):
                texts = self._texts(p, completion)
                for s in self.seeds:
                    head = {"set": set_, "kind": "edit", "round": rnd, "student": sv, "passage": p.index, "sample": j,
                            "seed": s}
                    units.append((head, self._candidate(head, texts, p, s, tok)))
        g = self.executor.group(self.opts.group)
        chunks = [units[i: i + g] for i in range(0, len(units), g)]
        done = sum(1 for head, _ in units if eval_key(head) in self.evals)
        task = f"round {rnd}: rewards" if set_ == "train" else f"held-out v{rnd}: evaluation"
        if done:
            self.emit(Message("info", f"{task}: {done} of {len(units)} candidates already evaluated (resumed)"))
        if set_ == "train":
            self._sweep_rewards(rnd, passages, k)
        work = [[(h, c) for h, c in chunk if eval_key(h) not in self.evals] for chunk in chunks]
        work = [w for w in work if w]
        if work:
            self.emit(Progress(task, done, len(units)))
        job = EvaluateJob(self.student.loader(student_version), self.cfg.lora, self.opts.engine, g)
        items = [([c for _, c in pending], self.cfg.answer) for pending in work]
        for pending, (results, _wall, _device) in zip(work, self.executor.map(job, items)):
            for (head, cand), res in zip(pending, results):  # the driver alone appends: written once per key
                self._append(self.evals, "evals", {
                    **head, "texts": cand.n_texts, "accuracy": res.accuracy, "f1": res.f1, "em": res.em,
                    "nll": res.nll, "steps": res.steps, "tokens": res.tokens, "seconds": res.seconds,
                    "loss_last": res.losses[-1] if res.losses else None, "answers": res.answers})
                done += 1
                if set_ == "train":
                    self._sweep_rewards(rnd, passages, k)
            self.emit(Progress(task, done, len(units)))

    def _candidate(self, head: dict, texts: list[str], p: Passage, seed: int, tok=None) -> Candidate:
        """The update that learns ``texts`` (distill: with the passage's sentence cues; the teacher's questions
        are not written for rewards)."""
        tag = ":".join(f"{k}{head[k]}" for k in ("set", "kind", "round", "student", "passage", "sample", "seed"))
        qa = study_pairs(p.context, [], [], self.cfg.absorb) if self.cfg.absorb.method == "distill" else []
        material = [Material(passage_text(p.title, p.context, self.cfg.parse), texts, qa)]
        return plan(material, self.cfg.absorb, dataclasses.replace(self.cfg.train, seed=seed), tok, p.questions,
                    p.golds, tag, self.cfg.answer.question_format)

    def _scores(self, set_: str, kind: str, rnd: int, sv: int, p: int, j: int) -> dict[int, Score]:
        found = {}
        for s in self.seeds:
            rec = self.evals.get((set_, kind, rnd, sv, p, j, s))
            if rec is not None:
                found[s] = Score.of(rec)
        return found

    def _sweep_rewards(self, rnd: int, passages: list[Passage], k: int) -> None:
        """Append the reward of every self-edit whose seeds (and baselines) are all evaluated."""
        sv = self._student_index(rnd - 1)
        for p in passages:
            base = self._scores("train", "passage", -1, sv, p.index, -1)
            if len(base) < len(self.seeds):
                continue
            for j in range(k):
                if (rnd, p.index, j) in self.rewards:
                    continue
                edit = self._scores("train", "edit", rnd, sv, p.index, j)
                if len(edit) < len(self.seeds):
                    continue
                gains = seed_gains(edit, base, self.opts.reward)
                self._append(self.rewards, "rewards", {
                    "round": rnd, "passage": p.index, "sample": j, "reward": reward_of(edit, base, self.opts.reward),
                    "gains": {str(s): g for s, g in gains.items()},
                    "accuracy": nanmean([e.accuracy for e in edit.values()]),
                    "passage_accuracy": nanmean([b.accuracy for b in base.values()])})

    def _student_index(self, version_index: int) -> int:
        return version_index if self.opts.self_mode else 0

    # ---- step 3 + 4: keep, M-step ---------------------------------------------------------------------------
    def kept_pairs(self, rnd: int, passages: list[Passage], samples: dict[int, dict], k: int) -> tuple[list, list]:
        """(prompt, completion) pairs to train on and the (passage, sample) picks."""
        pairs, picks = [], []
        for p in passages:
            rewards = [self.rewards.get((rnd, p.index, j))["reward"] for j in range(k)]
            for j in keep(rewards, self.opts.keep):
                rec = samples[p.index]
                pairs.append((rec["prompt"], rec["completions"][j]))
                picks.append({"passage": p.index, "sample": j, "reward": rewards[j]})
        return pairs, picks

    def m_step(self, rnd: int, prev: str, pairs: list, doc: dict) -> dict:
        """Train the policy adapter on ``pairs`` (continuing ``prev``, or a fresh one: ``policy.init``), save it as
        a new teacher version; its parent is ``prev``, the version whose samples it learned from.

        The chosen id is written to the manifest before training: a run killed after the save finds the adapter
        and does not train it again; one killed before retrains under the same (never saved) id."""
        if not pairs:
            doc.update(status="trained", adapter=prev, trained=False, note="no self-edit with a positive reward: "
                       "the teacher is unchanged this round")
            self._write_manifest(rnd, doc)
            return doc
        adapter = doc.get("adapter_pending") or self.store.new_id("t")
        if adapter not in self.store:
            doc.update(status="training", adapter_pending=adapter)
            self._write_manifest(rnd, doc)
            model = self.teacher.attach(prev if self.policy.init == "previous" else "")
            self.emit(Stage("train", f"round {rnd} teacher policy", total=None))
            result = train_policy(model, self.teacher.tokenizer, pairs, self.policy,
                                  on_step=lambda s, t, e, loss: self.emit(TrainStep(s, t, e, loss)),
                                  cap=self.cfg.teacher.max_new_tokens)
            self.store.save(model, adapter, {
                "kind": "teacher-policy", "round": rnd, "parent": prev or None, "family": self.family,
                "base_model": self.cfg.models.teacher, "self": self.opts.self_mode, "reward": self.opts.reward,
                "keep": self.opts.keep, "policy": dataclasses.asdict(self.policy), "pairs": result.pairs,
                "losses": result.losses, "reward_stats": doc.get("reward_stats"), "kept": doc.get("kept"),
                "run": str(self.out), "train_titles": self.split.train_titles,
                "rebuilt_from": doc.get("rebuilt_from")})
            self.teacher.version = adapter  # the attached weights are now this version's
            doc["policy_train"] = {"steps": result.steps, "pairs": result.pairs, "dropped": result.dropped,
                                   "loss_first": result.losses[0] if result.losses else None,
                                   "loss_last": result.losses[-1] if result.losses else None,
                                   "seconds": result.seconds}
        doc.update(status="trained", adapter=adapter, trained=True)
        doc.pop("adapter_pending", None)
        self._write_manifest(rnd, doc)
        return doc

    def rebuild(self, rnd: int, prev: str, doc: dict) -> dict:
        """A finished round whose teacher version is not in this home's store (the run folder was carried to
        another machine, or the version was deleted): its M-step again, from the kept self-edits the run logged
        (the same pairs, the same seed), saved as a new version; the manifest keeps the lost id as
        ``rebuilt_from``. The next round then continues from the rebuilt version. A quick held-out result the
        manifest lacks is measured for the rebuilt version."""
        train, k = self.round_passages(rnd), self.opts.samples
        samples = {p.index: self.samples.get(("train", rnd, p.index)) for p in train}
        lost = doc["adapter"]
        if any(v is None for v in samples.values()):
            raise BadInput(f"{self.out}: round {rnd}'s teacher {lost} is not in {self.store.root} and its "
                           "self-edits are not all logged in samples.jsonl; it cannot be rebuilt")
        pairs, picks = self.kept_pairs(rnd, train, samples, k)
        if picks != doc.get("picks"):
            raise BadInput(f"{self.manifest_path(rnd)}: the kept self-edits differ from rewards.jsonl; "
                           f"round {rnd}'s teacher {lost} cannot be rebuilt")
        self.emit(Message("warning", f"round {rnd}: teacher {lost} is not in {self.store.root}; rebuilding it "
                                     f"from the run's {len(pairs)} kept self-edits"))
        doc = {key: v for key, v in doc.items() if key != "adapter"}
        doc.update(status="training", rebuilt_from=lost)
        doc = self.m_step(rnd, prev, pairs, doc)
        if self.split.quick and "heldout" not in doc:  # a branch (bench/restem_branch.py) drops it
            doc["heldout"] = self.heldout(rnd, doc["adapter"])
        doc["status"] = "done"
        self._write_manifest(rnd, doc)
        return doc

    # ---- step 5: held-out -----------------------------------------------------------------------------------
    def heldout(self, v: int, version: str) -> Optional[dict]:
        """Teacher ``version`` (after round v) on the quick held-out passages: 1 self-edit each, S seeds."""
        quick = self.split.quick
        if not quick:
            return None
        samples = self.sample("heldout", v, version, quick, 1, self.cfg.teacher.seed + HELDOUT_SEED)
        sv = self._student_index(v)
        self.score("heldout", v, sv, version, quick, samples, 1)
        edits = [self.evals.get(("heldout", "edit", v, sv, p.index, 0, s)) for p in quick for s in self.seeds]
        base = [self.evals.get(("heldout", "passage", -1, sv, p.index, -1, s)) for p in quick for s in self.seeds]
        acc, pacc = nanmean([r["accuracy"] for r in edits]), nanmean([r["accuracy"] for r in base])
        return {"passages": len(quick), "questions": sum(len(p.questions) for p in quick),
                "accuracy": acc, "passage_accuracy": pacc, "gain": acc - pacc,
                "f1": nanmean([r["f1"] for r in edits]), "nll": nanmean([r["nll"] for r in edits]),
                "passage_nll": nanmean([r["nll"] for r in base])}

    # ---- the loop -------------------------------------------------------------------------------------------
    def run(self) -> dict:
        if self.split is None:
            self.prepare()
        started = time.time()
        o = self.opts
        k = o.samples
        train = list({p.index: p for r in range(1, o.rounds + 1) for p in self.round_passages(r)}.values())
        summaries = []
        if self.split.quick:
            doc = self.manifest(0)
            if doc is None or "heldout" not in doc:
                doc = {"round": 0, "status": "done", "adapter": "", "heldout": self.heldout(0, "")}
                self._write_manifest(0, doc)
            summaries.append(doc)
            self._say(doc)
        prev = ""
        for rnd in range(1, o.rounds + 1):
            doc = self.manifest(rnd) or {"round": rnd, "status": "sampling", "teacher": prev}
            if doc["status"] != "done":
                doc = self._round(rnd, prev, doc)
            elif doc.get("trained") and doc["adapter"] not in self.store:
                doc = self.rebuild(rnd, prev, doc)
            summaries.append(doc)
            self._say(doc)
            prev = doc["adapter"]
        self.teacher.detach()
        result = {"out": str(self.out), "teacher": prev, "rounds": summaries,
                  "split": {"train_titles": self.split.train_titles, "train_passages": len(train),
                            "train_passage_titles": sorted({p.title for p in train}),
                            "heldout_titles": len(self.split.heldout_titles), "heldout_passages": len(self.split.heldout),
                            "quick_eval_passages": len(self.split.quick), "heldout_file": str(self.out / "heldout.json")},
                  "settings": {"rounds": o.rounds, "passages": o.passages, "samples": k, "seeds": self.seeds,
                               "reward": o.reward, "keep": o.keep, "self": o.self_mode, "family": self.family,
                               "fresh": o.fresh, "engine": o.engine, "group": o.group, "config": self.cfg.to_dict()},
                  "seconds_this_invocation": time.time() - started}
        atomic_write(self.out / "results.json", json.dumps(result, indent=2, default=str) + "\n")
        return result

    def _round(self, rnd: int, prev: str, doc: dict) -> dict:
        train, k = self.round_passages(rnd), self.opts.samples
        t0 = time.perf_counter()
        if doc["status"] in ("sampling", "training"):
            samples = self.sample("train", rnd, prev, train, k, self.cfg.teacher.seed + 1000 * rnd)
            if doc["status"] == "sampling":
                self.score("train", rnd, self._student_index(rnd - 1), prev, train, samples, k)
            rewards = [self.rewards.get((rnd, p.index, j))["reward"] for p in train for j in range(k)]
            pairs, picks = self.kept_pairs(rnd, train, samples, k)
            doc.update(reward_stats=stats(rewards), kept=len(picks),
                       passages_kept=len({x["passage"] for x in picks}), passages=len(train), picks=picks,
                       grounding=self.grounding(train, samples, k, picks),
                       mean_accuracy=nanmean([r["accuracy"] for r in self._round_rewards(rnd)]),
                       passage_accuracy=nanmean([r["passage_accuracy"] for r in self._round_rewards(rnd)]))
            doc = self.m_step(rnd, prev, pairs, doc)
        if self.split.quick and "heldout" not in doc:
            doc["heldout"] = self.heldout(rnd, doc["adapter"])
        doc["status"] = "done"
        doc["seconds"] = doc.get("seconds", 0.0) + time.perf_counter() - t0
        self._write_manifest(rnd, doc)
        return doc

    @staticmethod
    def grounding(passages: list[Passage], samples: dict[int, dict], k: int, picks: list[dict]) -> dict:
        """Mean :func:`passage_share` of the round's sampled self-edits and of the kept ones: what the M-step
        pushes the teacher toward, and (next round's ``sampled``) whether it moved."""
        share = {(p.index, j): passage_share(samples[p.index]["completions"][j], p.context)
                 for p in passages for j in range(k)}
        return {"sampled": nanmean(share.values()),
                "kept": nanmean(share[(x["passage"], x["sample"])] for x in picks)}

    def _round_rewards(self, rnd: int) -> list[dict]:
        return [r for r in self.rewards if r["round"] == rnd]

    def _say(self, doc: dict) -> None:
        self.emit(Message("info", round_line(doc)))


def round_line(doc: dict) -> str:
    """One line per round: reward mean/max, fraction kept, the new version, held-out accuracy."""
    parts = [f"round {doc['round']}"]
    if doc["round"] > 0:
        st = doc.get("reward_stats") or {}
        parts.append(f"reward mean {_f(st.get('mean'))} max {_f(st.get('max'))} over {st.get('n', 0)} self-edits")
        parts.append(f"kept {doc.get('kept', 0)} ({doc.get('passages_kept', 0)}/{doc.get('passages', 0)} passages)")
        g = doc.get("grounding")
        if g:
            parts.append(f"passage words {_f(g['sampled'], '{:.0%}')} sampled / {_f(g['kept'], '{:.0%}')} kept")
        parts.append(f"teacher {doc.get('adapter') or 'base'}{'' if doc.get('trained', True) else ' (unchanged)'}")
    else:
        parts.append("untrained teacher")
    h = doc.get("heldout")
    if h:
        parts.append(f"held-out acc {h['accuracy']:.3f} vs passage-only {h['passage_accuracy']:.3f} "
                     f"({h['passages']} passages)")
    return ", ".join(parts)


def policy_identity(policy: PolicySettings) -> dict:
    """PolicySettings as a run folder records them."""
    return dataclasses.asdict(policy)




def _f(x, fmt: str = "{:+.3f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


__all__ = ["Restem", "RestemOptions", "round_line"]
