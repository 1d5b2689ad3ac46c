"""Where the lab's independent work items run: in this process (``local``) or on Ray actors (``ray``).

A *job* loads what every item needs once per worker (``setup``: the student model) and turns one item into one
result (``run``). An executor maps a job over a list of items and yields the results in the order of the items,
as they come. Callers append each result to their resumable log as it arrives: the driver is the only writer, so
a task that Ray retries after its worker died is written once, and a local run and a Ray run write the same
records.

``ray`` (config ``[run]``): one actor per GPU share (``num_gpus = gpus_per_worker``) or, on a machine without
GPUs, per CPU; each actor runs the job's ``setup`` and is fed items one at a time. Actors are restarted when
their process dies (``max_restarts``) and the item they were running is run again (``max_task_retries``).
Ray is imported only here and only when this executor is used.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, Sequence

from ..config import RunSettings
from ..errors import BadInput

RETRIES = 3                       # restarts of a dead worker, and runs of the item it was running
ADAPTER_BYTES = int(0.32 * 2**30)  # GPU memory per adapter of a batched group, embedded model, default [train]:
                                   # measured ~20 GB per process at K = 64 on an H100
MAX_K = 256


class Job(Protocol):
    def setup(self) -> None: ...

    def run(self, item: Any) -> Any: ...


def auto_k(free_bytes: int, share: float, fallback: int) -> int:
    """Adapters one worker trains at once: 90 % of its share of the free GPU memory, at ``ADAPTER_BYTES`` each."""
    if free_bytes <= 0:
        return fallback
    return max(1, min(MAX_K, int(0.9 * free_bytes * min(1.0, share) / ADAPTER_BYTES)))


def gpu_free_bytes() -> int:
    """Free memory of this process's first CUDA device (0 without one)."""
    import torch
    if not torch.cuda.is_available():
        return 0
    free, _total = torch.cuda.mem_get_info()
    return int(free)


class LocalExecutor:
    """Every item in this process, one after another (what the lab always did)."""

    name = "local"

    def __init__(self, settings: Optional[RunSettings] = None):
        self.settings = settings or RunSettings()

    def group(self, default: int) -> int:
        """The batched engine's group: ``[run] k_per_worker`` if set, else the command's ``--group``."""
        return self.settings.k_per_worker or default

    def map(self, job: Job, items: Sequence[Any]) -> Iterator[Any]:
        items = list(items)
        if not items:
            return
        job.setup()
        try:
            for item in items:
                yield job.run(item)
        finally:
            close = getattr(job, "close", None)
            if close is not None:
                close()


class _Worker:
    """A Ray actor: the job, set up once (again after a restart), fed items one at a time."""

    def __init__(self, job: Job, before_task: Optional[Callable[[], None]] = None):
        import ray
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
        job.setup()
        if cpus:  # after setup: load_model picks threads from the machine's idle cores, not this worker's share
            import torch
            torch.set_num_threads(max(1, int(cpus)))
        self.job, self.before_task = job, before_task

    def run(self, item: Any) -> Any:
        if self.before_task is not None:
            self.before_task()
        return self.job.run(item)

    def free_bytes(self) -> int:
        return gpu_free_bytes()


class RayExecutor:
    """Items on Ray actors. ``before_task`` runs in the actor before each item (fault injection in tests)."""

    name = "ray"

    def __init__(self, settings: RunSettings, before_task: Optional[Callable[[], None]] = None,
                 retries: int = RETRIES):
        self.settings, self.before_task, self.retries = settings, before_task, retries
        self._k: Optional[int] = None

    def _ray(self):
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local instance needs no token (silences a warning)
        try:
            import ray
        except ImportError:
            raise BadInput("run.executor = ray needs Ray: pip install 'ray>=2.9' (or run.executor = local)") from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.settings.ray_address or None, include_dashboard=False,
                         ignore_reinit_error=True, log_to_driver=False, logging_level="WARNING")
            except ConnectionError as e:
                raise BadInput(f"--ray-address {self.settings.ray_address!r}: {str(e).splitlines()[0]}") from None
        return ray

    def _gpus(self) -> float:
        return float(self._ray().cluster_resources().get("GPU", 0))

    def _options(self) -> dict:
        opts = {"max_restarts": self.retries, "max_task_retries": self.retries}
        if self._gpus():
            opts["num_gpus"] = self.settings.gpus_per_worker
        else:
            opts["num_cpus"] = 1
        return opts

    def workers(self, items: int) -> int:
        """``[run] workers``, or as many as the cluster holds (GPU shares, else CPUs); never more than items."""
        n = self.settings.workers
        if not n:
            gpus = self._gpus()
            n = int(gpus / self.settings.gpus_per_worker) if gpus else int(self._ray().cluster_resources().get("CPU", 1))
        return max(1, min(n, items))

    def group(self, default: int) -> int:
        """``[run] k_per_worker``, else on GPUs what a worker's share of the free GPU memory holds (asked of one
        worker-sized actor), else the command's ``--group``."""
        if self.settings.k_per_worker:
            return self.settings.k_per_worker
        if self._k is None:
            ray = self._ray()
            if self._gpus():
                probe = ray.remote(gpu_free_bytes).options(num_gpus=self.settings.gpus_per_worker)
                self._k = auto_k(ray.get(probe.remote()), self.settings.gpus_per_worker, default)
            else:
                self._k = default
        return self._k

    def map(self, job: Job, items: Sequence[Any]) -> Iterator[Any]:
        items = list(items)
        if not items:
            return
        ray = self._ray()
        from ray.util import ActorPool
        actor = ray.remote(_Worker).options(**self._options())
        job_ref = ray.put(job)
        actors = [actor.remote(job_ref, self.before_task) for _ in range(self.workers(len(items)))]
        try:
            pool = ActorPool(actors)
            yield from pool.map(lambda a, item: a.run.remote(item), items)
        finally:
            for a in actors:
                ray.kill(a, no_restart=True)


def make_executor(settings: RunSettings):
    if settings.executor == "ray":
        return RayExecutor(settings)
    return LocalExecutor(settings)


# ---- the job the knowledge bench and ReST-EM's rewards share ---------------------------------------------------
Loader = Callable[[], tuple[Any, Any]]  # () -> (model, tokenizer)


@dataclasses.dataclass
class EvaluateJob:
    """Groups of :class:`student.innerloop.Candidate` evaluated on one loaded student: an item is
    ``(candidates, AnswerSettings)``; its result ``(results, wall_seconds, device)``."""

    load: Loader
    lora: Any
    engine: str = "auto"
    group: int = 8
    on_progress: Optional[Callable[[int, int], None]] = None  # in this process only; not sent to Ray workers

    def setup(self) -> None:
        self.model, self.tokenizer = self.load()
        self.device = str(next(self.model.parameters()).device)

    def run(self, item: tuple[list, Any]) -> tuple[list, float, str]:
        from student.innerloop import evaluate
        candidates, answer = item
        t0 = time.perf_counter()
        results = evaluate(self.model, self.tokenizer, candidates, self.lora, answer, engine=self.engine,
                           group=self.group, on_progress=self.on_progress)
        return results, time.perf_counter() - t0, self.device

    def close(self) -> None:
        self.__dict__.pop("model", None)
        self.__dict__.pop("tokenizer", None)
        from ..models import free_memory
        free_memory()

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("model", "tokenizer", "device")}
        state["on_progress"] = None
        return state


def batches(sizes: Iterable[int], target: int) -> list[list[int]]:
    """Consecutive indices grouped until each group holds at least ``target`` (by ``sizes``); the last may hold less."""
    out: list[list[int]] = []
    size = 0
    for i, n in enumerate(sizes):
        if not out or size >= target:
            out.append([])
            size = 0
        out[-1].append(i)
        size += n
    return out


__all__ = ["EvaluateJob", "Job", "LocalExecutor", "RayExecutor", "auto_k", "batches", "make_executor"]
