"""A store that grows: one ``route`` store filled with N documents, then what it costs.

    python -m agent.lab.store_scale --docs 1000 --home /tmp/scale

Documents are SQuAD passages (``--data``) with their questions as probes; each gets the records ingest writes
(document, chunks, probes, a self-edit, training texts, the edit-log entry: through agent.memory) and an adapter
of the real shapes for the configured student (random LoRA weights, saved through student.adapters.AdapterStore,
``--dtype``). Measured: disk per document (adapter in float32 and bfloat16, the chroma store), record-write time
as the store grows, routing and ``ask`` latency on the real student, ``history``, and ``probe`` (its store reads
over every document, plus the answering time of a few documents times N). Whether bfloat16 adapters change
answers is measured on adapters really trained on a passage (``--compare``), since random weights say nothing
about what training puts there. Prints a table and writes ``<home>/store_scale.json``.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..config import load_config
from ..core import Agent, new_edit_id
from ..documents import Document, chunk_text
from ..memory import Edit
from ..models import load_model
from .squad import load_passages

SQUAD = Path("/work/shared/data/squad/squad_dev.json")


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def random_state(student, seed: int, dtype: torch.dtype) -> dict:
    """LoRA weights of the student's shapes: A as peft initialises it, B at the scale training reaches."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in student.state().items():
        scale = (1.0 / value.shape[1]) ** 0.5 if "lora_A" in key else 0.02
        out[key] = (torch.randn(value.shape, generator=g) * scale).to(dtype)
    return out


def save_adapter(agent: Agent, adapter_id: str, state: dict, dtype: torch.dtype, meta: dict):
    """Through AdapterStore.save, with the LoRA parameters in ``dtype`` for the write (then back)."""
    student = agent.student
    student.load(state)
    params = [p for n, p in student.model.named_parameters() if "lora_" in n]
    kept = [p.data for p in params]
    for p in params:
        p.data = p.data.to(dtype)
    try:
        return student.save(agent.adapters, adapter_id, meta)
    finally:
        for p, d in zip(params, kept):
            p.data = d


def fill(agent: Agent, passages, dtype: torch.dtype, log_every: int) -> list[float]:
    """One committed route edit per passage, written as ingest writes it. Returns seconds per document."""
    tok = agent.student.tokenizer
    cfg = agent.cfg
    times = []
    for i, p in enumerate(passages):
        t0 = time.perf_counter()
        doc = Document(p.title, p.context, f"squad:{p.index}", list(zip(p.questions, p.golds)))
        chunks = chunk_text(doc.text, lambda s: len(tok(s, add_special_tokens=False).input_ids),
                            cfg.ingest.chunk_tokens)
        seq = agent.memory.next_seq()
        edit = Edit(edit_id=new_edit_id(), seq=seq, kind="commit", doc_id=doc.doc_id, title=doc.title,
                    parent_adapter=agent.memory.state().head, created=time.time(), before=0.0, after=1.0,
                    info={"update": "route", "texts": 1, "synthetic": True})
        edit.adapter_id = agent.adapters.new_id()
        save_adapter(agent, edit.adapter_id, random_state(agent.student, i, dtype), dtype,
                     {"edit_id": edit.edit_id, "doc_id": doc.doc_id, "lora": asdict(cfg.lora)})
        agent.student.reset()
        text = f"{doc.title}\n{doc.text}"
        agent.memory.add_document(edit.edit_id, doc, chunks, doc.probes, "given")
        agent.memory.add_selfedits(edit.edit_id, doc.doc_id, [(0, 0, "implications", text, [text])])
        agent.memory.add_training(edit.edit_id, seq, [text])
        agent.memory.log(edit)
        times.append(time.perf_counter() - t0)
        if log_every and (i + 1) % log_every == 0:
            print(f"  {i + 1} documents, last {log_every}: {statistics.mean(times[-log_every:]):.2f} s each", flush=True)
    return times


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def bf16_check(agent: Agent, passages, n: int) -> dict:
    """Adapters trained on ``n`` passages (the configured [train], passage only), answered from float32 and from
    their bfloat16 copy: answers that differ, and the gold-answer NLL change."""
    student, rows = agent.student, []
    for p in passages[:n]:
        student.reset(agent.cfg.train.seed)
        student.absorb([f"{p.title}\n{p.context}"], agent.cfg.train)
        f32 = student.state()
        a32, n32 = student.answer(p.questions), student.answer_nll(p.questions, p.golds)
        student.load({k: v.to(torch.bfloat16) for k, v in f32.items()})
        a16, n16 = student.answer(p.questions), student.answer_nll(p.questions, p.golds)
        rows.append({"questions": len(p.questions), "answers_differ": sum(x != y for x, y in zip(a32, a16)),
                     "nll_f32": statistics.mean(n32), "nll_bf16": statistics.mean(n16),
                     "max_abs_nll_change": max(abs(x - y) for x, y in zip(n32, n16))})
    student.reset()
    return {"passages": n, "questions": sum(r["questions"] for r in rows),
            "answers_differ": sum(r["answers_differ"] for r in rows),
            "max_abs_nll_change": max((r["max_abs_nll_change"] for r in rows), default=0.0), "rows": rows}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--home", type=Path, required=True, help="an empty folder (the store is made there)")
    ap.add_argument("--data", type=Path, default=SQUAD)
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="adapters of the filled store")
    ap.add_argument("--asks", type=int, default=5, help="single questions timed through ask (real model)")
    ap.add_argument("--routes", type=int, default=50, help="single questions timed through routing")
    ap.add_argument("--probe-docs", type=int, default=3, help="documents whose probes are answered and timed")
    ap.add_argument("--compare", type=int, default=2, help="passages trained to compare float32 / bfloat16 answers")
    ap.add_argument("--keep", action="store_true", help="keep the adapters (else removed after measuring)")
    a = ap.parse_args(argv)
    passages = load_passages(a.data)[: a.docs]
    if len(passages) < a.docs:
        raise SystemExit(f"{a.data} has {len(passages)} passages")
    cfg = load_config(a.home)
    cfg.ingest.update = "route"
    from student.student import Student
    model, tok = load_model(cfg.models.student, cfg.home, cfg.models)
    agent = Agent(cfg, student=Student(model, tok, cfg.lora, cfg.answer))
    dtype = getattr(torch, a.dtype)
    res: dict = {"docs": a.docs, "adapter_dtype": a.dtype, "lora": asdict(cfg.lora), "threads": torch.get_num_threads()}

    # adapter size in both dtypes (same shapes, so every adapter of the store has these sizes)
    for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        aid = agent.adapters.new_id("size")
        save_adapter(agent, aid, random_state(agent.student, 0, dt), dt, {"lora": asdict(cfg.lora)})
        res[f"adapter_bytes_{name}"] = folder_bytes(agent.adapters.path(aid))
        agent.adapters.remove(aid)
    agent.student.reset()
    res["lora_parameters"] = sum(v.numel() for v in agent.student.state().values())

    print(f"filling {a.docs} documents ({a.dtype} adapters) ...", flush=True)
    times, fill_s = timed(fill, agent, passages, dtype, max(1, a.docs // 10))
    res["fill_seconds"] = fill_s
    k = max(1, min(100, a.docs // 10))
    res["write_seconds_first"] = statistics.mean(times[:k])
    res["write_seconds_last"] = statistics.mean(times[-k:])
    res["disk_adapters_per_doc"] = folder_bytes(agent.adapters.root) / a.docs
    res["disk_chroma_per_doc"] = folder_bytes(Path(cfg.home) / "chroma") / a.docs

    rng = random.Random(0)
    picks = [rng.randrange(a.docs) for _ in range(max(a.routes, a.asks))]
    qs = [(passages[i].title, passages[i].questions[0]) for i in picks]
    agent.routes([qs[0][1]])  # warm: the embedder loads
    lat, own = [], 0
    for title, q in qs[: a.routes]:
        [got], s = timed(agent.routes, [q])
        lat.append(s)
        own += got == title
    res["route_ms_median"] = 1000 * statistics.median(lat)
    res["route_own_share"] = own / len(lat)
    asks = [timed(agent.ask, [q])[1] for _, q in qs[: a.asks]]
    res["ask_seconds_median"] = statistics.median(asks)
    res["history_seconds"] = timed(agent.history)[1]
    # probe = for each document: its edit, its probes, their routed answers. The store part over all N:
    def reads():
        docs, probes = agent.memory.documents(), agent.memory.probes()
        for d in docs:
            agent.memory.find_edit(d["edit_id"])
        return docs, probes
    (docs, probes), res["probe_store_seconds"] = timed(reads)
    answer = [timed(agent.score, probes[d["doc_id"]])[1] for d in docs[: a.probe_docs]]
    res["probe_answer_seconds_per_doc"] = statistics.mean(answer)
    res["probe_seconds_estimated"] = res["probe_store_seconds"] + a.docs * res["probe_answer_seconds_per_doc"]
    print("bf16 check: training adapters on real passages ...", flush=True)
    res["bf16"] = bf16_check(agent, passages, a.compare)
    agent.close()
    if not a.keep:
        shutil.rmtree(agent.adapters.root, ignore_errors=True)
    (Path(a.home) / "store_scale.json").write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))
    return res


def table(r: dict) -> str:
    mb = 2**20
    rows = [
        ("documents", f"{r['docs']}"),
        ("LoRA parameters per adapter", f"{r['lora_parameters']:,} (r={r['lora']['r']}, {r['lora']['target_modules']})"),
        ("adapter on disk, float32 / bfloat16", f"{r['adapter_bytes_float32'] / mb:.1f} / {r['adapter_bytes_bfloat16'] / mb:.1f} MiB"),
        (f"disk per document: adapters ({r['adapter_dtype']}) + chroma",
         f"{r['disk_adapters_per_doc'] / mb:.1f} + {r['disk_chroma_per_doc'] / mb:.3f} MiB"),
        ("fill: records + adapter per document, first / last 10 %",
         f"{r['write_seconds_first']:.2f} / {r['write_seconds_last']:.2f} s ({r['fill_seconds'] / 60:.1f} min in all)"),
        ("routing one question (median)", f"{r['route_ms_median']:.0f} ms; own document {r['route_own_share']:.0%}"),
        ("ask one question, real student (median)", f"{r['ask_seconds_median']:.2f} s"),
        ("history", f"{r['history_seconds']:.2f} s"),
        ("probe: store reads, all documents", f"{r['probe_store_seconds']:.2f} s"),
        ("probe: answering, per document", f"{r['probe_answer_seconds_per_doc']:.2f} s"),
        ("probe, whole store (estimated)", f"{r['probe_seconds_estimated'] / 60:.1f} min"),
        ("bf16 vs f32 adapters (trained)", f"{r['bf16']['answers_differ']} of {r['bf16']['questions']} answers differ; "
                                           f"max |Δ NLL| {r['bf16']['max_abs_nll_change']:.4f}"),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(w)}  {v}" for k, v in rows)


if __name__ == "__main__":
    main()
