"""Batched multi-LoRA: K independent LoRA adapters trained in the same forward/backward passes.

Why hand-written: peft can hold several adapters and even route a mixed batch to them
(``adapter_names=``), but only for inference — training one adapter per example in one batch is not
supported. SEAL therefore trains one adapter at a time, one sequence per step, and a GPU sits idle
between tiny kernels. Here every target ``nn.Linear`` of the base model is swapped for a
:class:`RoutedLoRALinear` holding stacked adapter weights ``A: (K, r, in)`` and ``B: (K, out, r)`` (views
into one flat (K, P) bank, :class:`FlatBank`); a shared :class:`Router` holds one adapter index per batch
row. Rows are scattered into per-adapter blocks (zero rows pad an adapter with fewer rows; none at all
when the rows come grouped, as in training steps), and one batched matmul over the stacked weights gives
every row its own delta; if the rows are too unbalanced for blocks, per-row copies ``A[index]`` /
``B[index]`` are gathered instead. No Python loop over adapters. The same module serves
generation with a KV cache: the routing index follows the batch rows.

Training (:func:`train_many`) keeps every adapter exactly on the path it would follow alone with
:func:`student.trainer.train_adapter`:

- the same data order (:func:`student.trainer.batch_plan`, seeded by each adapter's ``settings.seed``),
  the same initialisation as :meth:`student.student.Student.reset` (seeded Kaiming A, zero B),
  the same learning-rate schedule (:func:`student.trainer.lr_schedule`);
- per-adapter loss normalisation: adapter k's loss is the token mean over its own rows of the step;
  the step's loss is the sum over adapters, so no gradient mixes across adapters;
- per-adapter gradient-norm clipping (``torch.nn.utils.clip_grad_norm_``'s formula on each slice);
- per-adapter AdamW: AdamW is elementwise, so torch's AdamW over the K rows of the stacked bank, one
  param group per adapter (its learning rate, set from its own schedule each step, and weight decay),
  is K independent optimizers with per-adapter moments and step counts;
- adapters with different numbers of steps (text counts, batch sizes, epochs): an adapter whose schedule
  is finished gets no more rows and its row's gradient is None for the optimizer (no weight decay, no
  moment decay, no step count), so it stays exactly where it would have stopped alone.

Equivalence with the sequential engine is within float tolerance (batch composition and padding change
reduction orders); with LoRA dropout > 0 the random streams differ, so it only holds in distribution.
"""

from __future__ import annotations

import math
import time
import warnings
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from peft.tuners.tuners_utils import _maybe_include_all_linear_layers, check_target_module_exists
from safetensors.torch import save_file
from torch import nn

from .batching import (default_max_tokens, default_overhead, micro_batches, model_device,
                       pad_id_of, tokenize_prompted, tokenize_texts, training_autocast)
from .config import AnswerSettings, LoraSettings, TrainSettings
from .distill import MaskedRow, Row, StudyItem, StudyRow, TargetCache, row_count, row_ids, rows_loss
from .inference import answer_sequences, generate_greedy, mean_per_token, question_prompts, sequences_nll
from .student import lora_config
from .trainer import TrainResult, batch_plan, in_turn, lr_schedule, make_adamw

WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


ManyStepCallback = Callable[[int, int, dict[int, float]], None]
"""on_step(step, total, losses): global step in 1..total, loss of each adapter that trained in it."""


PAD_BUDGET = 2.0
"""The block layout is used when it needs at most this many padded rows per real row."""


@dataclass(frozen=True)
class Layout:
    """Rows laid out as n blocks of c: block j holds the rows of the j-th adapter present (zero rows pad
    an adapter with fewer than c rows).

    ``ids``: the adapters present, in block order; None when they are 0..n-1 (no gather at all).
    ``slots[i]``: row i's place in the n·c padded rows; None when that is the identity (the rows already
    come grouped by adapter, c each: no copy).
    """

    n: int
    c: int
    ids: Optional[torch.Tensor]
    slots: Optional[torch.Tensor]


def block_layout(index: Sequence[int], device: torch.device, budget: Optional[float] = None) -> Optional[Layout]:
    """The block layout of rows routed to ``index``, or None when it would pad more than ``budget``×
    (default :data:`PAD_BUDGET`) rows."""
    budget = PAD_BUDGET if budget is None else budget
    if not index:
        return None
    ids = sorted(set(index))
    block = {k: j for j, k in enumerate(ids)}
    counts = [0] * len(ids)
    for k in index:
        counts[block[k]] += 1
    n, c = len(ids), max(counts)
    if n * c > budget * len(index):
        return None
    rank = [0] * n
    slots = []
    for k in index:
        j = block[k]
        slots.append(j * c + rank[j])
        rank[j] += 1
    identity = len(index) == n * c and slots == list(range(len(index)))
    return Layout(
        n, c,
        None if ids == list(range(n)) else torch.as_tensor(ids, dtype=torch.long, device=device),
        None if identity else torch.as_tensor(slots, dtype=torch.long, device=device),
    )


class Router:
    """The adapter of each batch row, shared by all routed layers (``index`` None = base model only)."""

    def __init__(self) -> None:
        self.index: Optional[torch.Tensor] = None
        self.layout: Optional[Layout] = None

    def set(self, index: Optional[torch.Tensor], layout: Optional[Layout] = None) -> None:
        self.index, self.layout = index, layout


def adapter_dtype(base_dtype: torch.dtype) -> torch.dtype:
    """peft keeps half-precision models' adapters in float32 (autocast_adapter_dtype); so do we."""
    return torch.float32 if base_dtype in (torch.float16, torch.bfloat16) else base_dtype


class FlatBank:
    """All adapters' weights in one (K, P) tensor, and their gradients in another.

    Each layer's A (K, r, in) and B (K, out, r) are leaf parameters that are *views* into ``weight``,
    with ``.grad`` set to the matching views of ``grad``: autograd accumulates into them in place, so
    after backward ``grad`` holds every adapter's full gradient, and clipping and AdamW are a handful
    of kernels over two tensors (not thousands over per-layer tensors). Slicing one big leaf inside
    forward instead would make autograd materialise a full (K, P) gradient per layer.
    """

    def __init__(self, k: int, size: int, dtype: torch.dtype, device: torch.device) -> None:
        self.weight = torch.zeros(k, size, dtype=dtype, device=device)
        self.grad = torch.zeros_like(self.weight)
        self.used = 0
        self.views: list[tuple[nn.Parameter, torch.Tensor]] = []

    def take(self, *shape: int) -> nn.Parameter:
        """A (K, *shape) parameter backed by the next columns of the bank."""
        n = math.prod(shape)
        start, self.used = self.used, self.used + n
        k = self.weight.shape[0]
        param = nn.Parameter(self.weight[:, start : self.used].view(k, *shape))
        param.grad = self.grad[:, start : self.used].view(k, *shape)
        self.views.append((param, param.grad))
        return param

    def check(self) -> None:
        """Fail loudly if autograd replaced a gradient view instead of accumulating into it."""
        if any(p.grad is not g for p, g in self.views):
            raise RuntimeError("a LoRA gradient left the flat bank (was .grad reassigned?)")


class RoutedLoRALinear(nn.Module):
    """``base(x) + scaling · B[k] A[k] x`` with k = the router's index of x's batch row."""

    def __init__(self, base: nn.Linear, bank: FlatBank, r: int, scaling: float, dropout: float,
                 router: Router) -> None:
        super().__init__()
        self.base = base
        self.router = router
        self.scaling = scaling
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.A = bank.take(r, base.in_features)
        self.B = bank.take(base.out_features, r)

    @staticmethod
    def size(base: nn.Linear, r: int) -> int:
        return r * (base.in_features + base.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        index = self.router.index
        if index is None:
            return out
        rows = x.shape[0]
        if index.shape[0] != rows:
            raise RuntimeError(f"router has {index.shape[0]} rows, the batch has {rows}")
        h = self.dropout(x.to(self.A.dtype)).reshape(rows, -1, x.shape[-1])  # (N, T, in)
        layout = self.router.layout
        # index_select (not A[index]): its backward is one index_add, not a sorting index_put
        if layout is None:  # unbalanced rows: per-row weights (a gathered copy of A and B per row)
            a, b = self.A.index_select(0, index), self.B.index_select(0, index)
            h = torch.bmm(torch.bmm(h, a.transpose(1, 2)), b.transpose(1, 2))
        else:  # block layout: one bmm over the stacked weights, rows scattered into adapter blocks
            n, c, slots = layout.n, layout.c, layout.slots
            if layout.ids is not None:
                a, b = self.A.index_select(0, layout.ids), self.B.index_select(0, layout.ids)
            else:
                a, b = (self.A, self.B) if n == self.A.shape[0] else (self.A[:n], self.B[:n])
            if slots is not None:
                h = h.new_zeros(n * c, *h.shape[1:]).index_copy(0, slots, h)
            h = torch.bmm(torch.bmm(h.reshape(n, -1, h.shape[-1]), a.transpose(1, 2)), b.transpose(1, 2))
            h = h.reshape(n * c, -1, h.shape[-1])
            if slots is not None:
                h = h.index_select(0, slots)
        # as peft: add in the adapter dtype, then cast back to the base layer's output dtype
        return (out + h.reshape(out.shape) * self.scaling).to(out.dtype)


def target_names(model: nn.Module, lora: LoraSettings) -> list[str]:
    """Names of the modules peft would wrap for ``lora`` (all-linear: every nn.Linear but the output head)."""
    config = _maybe_include_all_linear_layers(deepcopy(lora_config(lora)), model)
    names = []
    for name, module in model.named_modules():
        if name and _is_match(check_target_module_exists(config, name)):
            if not isinstance(module, nn.Linear):
                raise TypeError(f"multi-LoRA supports nn.Linear targets only; {name} is {type(module).__name__}")
            names.append(name)
    if not names:
        raise ValueError(f"no module of the model matches target_modules={lora.target_modules!r}")
    return names


def _is_match(found) -> bool:
    # peft returns True, a re.Match, None/False, or an _ExcludedModule marker (falsy)
    return bool(found) and type(found).__name__ != "_ExcludedModule"


class MultiLoRA:
    """K stacked LoRA adapters on the target layers of ``model``; attach with ``with MultiLoRA(...) as m:``.

    While attached, the base model's own parameters are frozen (their flags come back on detach) and the
    target ``nn.Linear`` modules are replaced by :class:`RoutedLoRALinear` (put back on detach).
    """

    def __init__(self, model: nn.Module, lora: LoraSettings, k: int) -> None:
        if k <= 0:
            raise ValueError(f"need at least one adapter, got k={k}")
        self.model, self.lora, self.k = model, lora, k
        self.names = target_names(model, lora)
        modules = dict(model.named_modules())
        bases = [modules[name] for name in self.names]
        if len({(m.weight.device, adapter_dtype(m.weight.dtype)) for m in bases}) != 1:
            raise ValueError("multi-LoRA needs all target layers on one device with one dtype")
        w = bases[0].weight
        size = sum(RoutedLoRALinear.size(m, lora.r) for m in bases)
        self.bank = FlatBank(k, size, adapter_dtype(w.dtype), w.device)
        self.router = Router()
        scaling = lora.alpha / lora.r
        self.layers: dict[str, RoutedLoRALinear] = {
            name: RoutedLoRALinear(m, self.bank, lora.r, scaling, lora.dropout, self.router)
            for name, m in zip(self.names, bases)
        }
        self._flags: list[tuple[nn.Parameter, bool]] = []
        self.attached = False

    # attach / detach -------------------------------------------------------
    def _set(self, name: str, module: nn.Module) -> None:
        parent_name, _, child = name.rpartition(".")
        parent = self.model.get_submodule(parent_name) if parent_name else self.model
        setattr(parent, child, module)

    def attach(self) -> "MultiLoRA":
        if not self.attached:
            self._flags = [(p, p.requires_grad) for p in self.model.parameters()]
            for p, _ in self._flags:
                p.requires_grad_(False)
            for name, layer in self.layers.items():
                self._set(name, layer)
            self.attached = True
        return self

    def detach(self) -> None:
        if self.attached:
            for name, layer in self.layers.items():
                self._set(name, layer.base)
            for p, flag in self._flags:
                p.requires_grad_(flag)
            self.router.set(None)
            self.attached = False

    def __enter__(self) -> "MultiLoRA":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    # adapters --------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def parameters(self) -> list[nn.Parameter]:
        """The per-layer A and B parameters (views into ``bank.weight``)."""
        return [p for layer in self.layers.values() for p in (layer.A, layer.B)]

    def route(self, index: Optional[Sequence[int]]) -> None:
        """Send batch row i to adapter ``index[i]`` (None: base model, no adapter)."""
        if index is None:
            self.router.set(None)
            return
        index = list(index)
        device = self.device
        self.router.set(torch.as_tensor(index, dtype=torch.long, device=device), block_layout(index, device))

    @torch.no_grad()
    def reset(self, k: int, seed: int) -> None:
        """Fresh adapter k, identical to ``Student.reset(seed)``: seeded Kaiming-uniform A (layer order), B = 0."""
        w = self.bank.weight
        devices = [w.device.index or 0] if w.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for layer in self.layers.values():
                a = torch.empty_like(layer.A[k])
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # what peft's reset_lora_parameters does
                layer.A[k].copy_(a)
                layer.B[k].zero_()

    def state(self, k: int) -> dict[str, torch.Tensor]:
        """Adapter k as a peft state dict (keys as ``get_peft_model_state_dict`` / ``save_pretrained`` write)."""
        out = {}
        for name, layer in self.layers.items():
            out[f"{PEFT_PREFIX}{name}.lora_A.weight"] = layer.A[k].detach().to("cpu", copy=True).contiguous()
            out[f"{PEFT_PREFIX}{name}.lora_B.weight"] = layer.B[k].detach().to("cpu", copy=True).contiguous()
        return out

    @torch.no_grad()
    def load(self, k: int, state: dict[str, torch.Tensor]) -> None:
        """Put a peft state dict (e.g. ``Student.state()``) into adapter slot k."""
        expected = {f"{PEFT_PREFIX}{n}.lora_{m}.weight" for n in self.names for m in "AB"}
        if set(state) != expected:
            raise ValueError(f"state keys do not match the {len(self.names)} target layers of this model")
        for name, layer in self.layers.items():
            layer.A[k].copy_(state[f"{PEFT_PREFIX}{name}.lora_A.weight"])
            layer.B[k].copy_(state[f"{PEFT_PREFIX}{name}.lora_B.weight"])

    def save(self, k: int, folder: Path | str) -> Path:
        """Adapter k as a standard peft folder (adapter_config.json + adapter_model.safetensors)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = lora_config(self.lora)
        config.base_model_name_or_path = getattr(getattr(self.model, "config", None), "_name_or_path", None)
        config.save_pretrained(str(folder))
        save_file(self.state(k), str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        return folder


# training --------------------------------------------------------------------
class PerAdapterAdamW:
    """K independent AdamW optimizers: torch.optim.AdamW over the K rows of the bank.

    Adapter k's parameter is row k of the bank (a view; its ``.grad`` is row k of the bank's gradient),
    with its own moments and step count. AdamW is elementwise, so one AdamW over the stacked rows is K
    separate optimizers; what differs per adapter is carried by param groups: adapters with the same
    learning-rate schedule and weight decay share a group (one fused call for all of them), and each
    group's learning rate is set from that schedule every step. An adapter past the end of its schedule
    has its row's ``.grad`` set to None: torch's AdamW then skips it entirely (no weight decay, no moment
    decay, no step count). Same implementation and defaults as :func:`student.trainer.train_adapter`'s
    optimizer (:func:`student.trainer.make_adamw`).
    """

    def __init__(self, bank: "FlatBank", schedules: Sequence[Sequence[float]], weight_decays: Sequence[float]) -> None:
        self.bank = bank
        self.rows = [nn.Parameter(bank.weight[k]) for k in range(len(schedules))]
        shared: dict[tuple, list[int]] = {}
        for k, (lrs, wd) in enumerate(zip(schedules, weight_decays)):
            shared.setdefault((tuple(lrs), wd), []).append(k)
        self.members = list(shared.values())
        self.schedules = [list(schedules[m[0]]) for m in self.members]
        groups = [
            {"params": [self.rows[k] for k in m], "lr": lrs[0] if lrs else 0.0, "weight_decay": weight_decays[m[0]]}
            for m, lrs in zip(self.members, self.schedules)
        ]
        self.optimizer = make_adamw(groups, groups[0]["lr"], groups[0]["weight_decay"])

    @torch.no_grad()
    def step(self, t: int) -> None:
        """Step ``t`` (0-based) of every adapter whose schedule has one."""
        for members, lrs, group in zip(self.members, self.schedules, self.optimizer.param_groups):
            on = t < len(lrs)
            if on:
                group["lr"] = lrs[t]
            for k in members:
                self.rows[k].grad = self.bank.grad[k] if on else None
        self.optimizer.step()
        for row in self.rows:
            row.grad = None


@torch.no_grad()
def clip_per_adapter(grad: torch.Tensor, max_norm: torch.Tensor) -> torch.Tensor:
    """``clip_grad_norm_`` on each adapter's row of a (K, P) gradient; max_norm (K,), <= 0 = no clipping.

    Returns the per-adapter gradient norms (before clipping).
    """
    norms = torch.linalg.vector_norm(grad, dim=1)
    max_norm = max_norm.to(grad.device, norms.dtype)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    coef = torch.where(max_norm > 0, coef, torch.ones_like(coef))
    grad.mul_(coef.view(-1, 1))
    return norms


@dataclass
class _Plan:
    seqs: list[Row]  # texts' token ids, then study rows
    steps: list[list[int]]  # sequence indices per step
    lrs: list[float]  # learning rate per step
    per_epoch: int


def _plan(tokenizer, texts: Sequence[str], settings: TrainSettings, study: Sequence[StudyRow] = (),
          prompt_chars: Optional[Sequence[int]] = None) -> _Plan:
    if prompt_chars is None:
        seqs: list[Row] = list(tokenize_texts(tokenizer, texts, settings.max_len, add_eos=True))
    else:
        seqs = [MaskedRow(ids, labels) for ids, labels in
                zip(*tokenize_prompted(tokenizer, texts, prompt_chars, settings.max_len))]
    seqs += list(study)
    steps = batch_plan(len(seqs), settings) if seqs else []
    return _Plan(seqs, steps, lr_schedule(settings, len(steps)), math.ceil(len(seqs) / settings.batch_size) or 1)


def train_many(
    multi: MultiLoRA,
    tokenizer,
    texts: Sequence[Sequence[str]],
    settings: Sequence[TrainSettings],
    max_tokens: Optional[int] = None,
    overhead: Optional[int] = None,
    on_step: Optional[ManyStepCallback] = None,
    side: Optional[Sequence[Sequence[str]]] = None,
    study: Optional[Sequence[Sequence[StudyItem]]] = None,
    targets: Optional[TargetCache] = None,
    prompt_chars: Optional[Sequence[Optional[Sequence[int]]]] = None,
) -> list[TrainResult]:
    """Train adapter k of ``multi`` on ``texts[k]`` with ``settings[k]``, all adapters in the same passes.

    ``prompt_chars[k]`` (optional): per text of ``texts[k]``, a prompt prefix not learned (as in
    :func:`student.trainer.train_adapter`); None = whole texts.

    ``side[k]`` (optional): texts learned beside ``texts[k]`` as :func:`student.trainer.train_adapter`'s
    ``side``: each step adds ``settings[k].side_weight`` x the mean NLL of its share of them (in turn).
    ``study[k]`` (optional): study items planned with ``texts[k]`` and learned by context distillation, as
    :func:`student.trainer.train_adapter`'s ``study``; their targets come from ``targets`` (filled with what it
    lacks, the base model routed to no adapter) or from a cache of this call. Items shared by several adapters
    get their targets computed once.

    Each step's rows (all active adapters' batches) run in micro-batches (see :func:`micro_batches`;
    ``max_tokens`` and ``overhead`` default to :func:`default_max_tokens` and :func:`default_overhead`)
    whose gradients accumulate before the update.
    Adapters beyond ``len(texts)`` are left untouched. Each TrainResult's ``seconds`` is the wall time of
    the whole joint run.
    """
    if len(texts) != len(settings):
        raise ValueError(f"{len(texts)} text lists but {len(settings)} settings")
    side = [[] for _ in texts] if side is None else side
    if len(side) != len(texts):
        raise ValueError(f"{len(texts)} text lists but {len(side)} side lists")
    study = [[] for _ in texts] if study is None else study
    if len(study) != len(texts):
        raise ValueError(f"{len(texts)} text lists but {len(study)} study lists")
    if len(texts) > multi.k:
        raise ValueError(f"{len(texts)} adapters to train but only {multi.k} slots")
    if not multi.attached:
        raise RuntimeError("attach the MultiLoRA first (with MultiLoRA(...) as multi:)")
    start = time.perf_counter()
    n = len(texts)
    if n == 0:
        return []
    study_rows = _study_rows(multi, tokenizer, study, settings, targets, max_tokens, overhead)
    prompt_chars = [None] * len(texts) if prompt_chars is None else prompt_chars
    plans = [_plan(tokenizer, t, s, r, c) for t, s, r, c in zip(texts, settings, study_rows, prompt_chars)]
    sides = [tokenize_texts(tokenizer, x, s.max_len, add_eos=True) if x and s.side_weight > 0 else []
             for x, s in zip(side, settings)]
    side_per_step = [math.ceil(len(x) / p.per_epoch) for x, p in zip(sides, plans)]
    results = [TrainResult() for _ in range(n)]
    total = max((len(p.steps) for p in plans), default=0)
    bank = multi.bank
    optimizer = PerAdapterAdamW(bank, [p.lrs for p in plans], [s.weight_decay for s in settings])
    max_norm = torch.zeros(multi.k, dtype=torch.float64)
    for k, s in enumerate(settings):
        max_norm[k] = s.grad_clip or 0.0
    pad_id = pad_id_of(tokenizer)
    device = multi.device
    overhead = default_overhead(device) if overhead is None else overhead
    max_tokens = default_max_tokens(device) if max_tokens is None else max_tokens
    model = multi.model
    was_training = model.training
    model.train()
    try:
        for step in range(total):
            active = [k for k in range(n) if step < len(plans[k].steps)]
            # rows of this step: each adapter's batch, then its share of side texts; each row's weight makes the
            # adapter's loss its batch's mean token NLL + side_weight x the side rows' mean (targets: len - 1)
            seqs, owner, weight = [], [], []
            counts = torch.zeros(multi.k, dtype=torch.float64)
            for k in active:
                own = [plans[k].seqs[i] for i in plans[k].steps[step]]
                counts[k] = sum(row_count(q) for q in own)
                extra = in_turn(sides[k], step + 1, side_per_step[k]) if sides[k] else []
                n_extra = sum(len(q) - 1 for q in extra)
                for rows, w in ((own, 1.0 / max(1, counts[k])), (extra, settings[k].side_weight / max(1, n_extra))):
                    seqs.extend(rows)
                    owner.extend([k] * len(rows))
                    weight.extend([float(w)] * len(rows))
            step_nll = torch.zeros(multi.k, dtype=torch.float64, device=device)
            lengths = [len(row_ids(s)) for s in seqs]
            for rows in micro_batches(lengths, max_tokens, overhead):
                rows = sorted(rows, key=lambda i: owner[i])  # grouped by adapter: often no scatter needed
                index = [owner[i] for i in rows]
                multi.route(index)
                with training_autocast(model, settings[0].autocast):  # one forward serves every adapter
                    nll = rows_loss(model, [seqs[i] for i in rows], pad_id)
                route = multi.router.index
                row_weight = torch.tensor([weight[i] for i in rows], dtype=nll.dtype, device=device)
                per_adapter = torch.zeros(multi.k, dtype=nll.dtype, device=device).index_add(0, route, nll * row_weight)
                with warnings.catch_warnings():
                    # the bank's column views are strided (not "dense"); accumulation is in place all the same
                    warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")
                    per_adapter.sum().backward()
                step_nll += per_adapter.detach().to(torch.float64)
            multi.route(None)
            if step == 0:
                bank.check()
            clip_per_adapter(bank.grad, max_norm)
            optimizer.step(step)
            bank.grad.zero_()
            losses = step_nll.cpu().tolist()
            for k in active:
                results[k].losses.append(losses[k])
                results[k].tokens += int(counts[k])
                results[k].steps += 1
            if on_step is not None:
                on_step(step + 1, total, {k: losses[k] for k in active})
    finally:
        multi.route(None)
        bank.grad.zero_()
        model.train(was_training)
    seconds = time.perf_counter() - start
    for r in results:
        r.seconds = seconds
    return results


def _study_rows(multi: MultiLoRA, tokenizer, study: Sequence[Sequence[StudyItem]], settings: Sequence[TrainSettings],
                targets: Optional[TargetCache], max_tokens: Optional[int], overhead: Optional[int]
                ) -> list[list[StudyRow]]:
    """Each adapter's study rows, the targets of all of them computed in one pass of the base model (routed to no
    adapter), once per distinct item."""
    if not any(items and s.epochs > 0 for items, s in zip(study, settings)):
        return [[] for _ in study]
    targets = TargetCache() if targets is None else targets
    multi.route(None)
    tokens = [targets.tokenize(tokenizer, items, s.max_len) if s.epochs > 0 else [] for items, s in zip(study, settings)]
    targets.fill(multi.model, tokenizer, [t for ts in tokens for t in ts], max_tokens=max_tokens, overhead=overhead)
    return [[StudyRow(t, targets.get(t)) for t in ts] for ts in tokens]


# inference -------------------------------------------------------------------
def _flatten(per_adapter: Sequence[Sequence]) -> tuple[list, list[int]]:
    items, owner = [], []
    for k, xs in enumerate(per_adapter):
        items.extend(xs)
        owner.extend([k] * len(xs))
    return items, owner


def _unflatten(values: list, per_adapter: Sequence[Sequence]) -> list[list]:
    out, i = [], 0
    for xs in per_adapter:
        out.append(values[i : i + len(xs)])
        i += len(xs)
    return out


def answer_many(
    multi: MultiLoRA, tokenizer, questions: Sequence[Sequence[str]], answer: AnswerSettings, batch_size: int
) -> list[list[str]]:
    """Closed-book greedy answers of adapter k to ``questions[k]``: all adapters in the same generation passes."""
    flat, owner = _flatten(questions)
    if not flat:
        return [[] for _ in questions]
    prompts = question_prompts(tokenizer, flat, answer.question_format)
    multi.model.eval()
    try:
        texts = generate_greedy(
            multi.model, tokenizer, prompts, answer.max_new_tokens, batch_size,
            select=lambda rows: multi.route([owner[i] for i in rows]),
        )
    finally:
        multi.route(None)
    return _unflatten(texts, questions)


def answer_nll_many(
    multi: MultiLoRA,
    tokenizer,
    questions: Sequence[Sequence[str]],
    golds: Sequence[Sequence[str]],
    answer: AnswerSettings,
    batch_size: int,
) -> list[list[float]]:
    """Mean NLL per gold-answer token of adapter k on (``questions[k]``, ``golds[k]``), batched together."""
    flat_q, owner = _flatten(questions)
    flat_g, _ = _flatten(golds)
    if not flat_q:
        return [[] for _ in questions]
    seqs, labels = answer_sequences(tokenizer, flat_q, flat_g, answer.question_format)
    multi.model.eval()
    try:
        sums, counts = sequences_nll(
            multi.model, tokenizer, seqs, labels, batch_size,
            select=lambda rows: multi.route([owner[i] for i in rows]),
        )
    finally:
        multi.route(None)
    return _unflatten(mean_per_token(sums, counts), questions)
