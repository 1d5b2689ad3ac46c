import multiprocessing as mp
import os
import signal

import pytest
import torch
from safetensors.torch import save_file

from student.adapters import AdapterError, AdapterStore
from student.config import LoraSettings, TrainSettings
from student.student import Student
from tests.conftest import make_tiny_model

LORA = LoraSettings(r=4, alpha=8)


def test_new_ids_unique_and_never_reused(tmp_path):
    store = AdapterStore(tmp_path / "adapters")
    ids = [store.new_id() for _ in range(50)]
    assert len(set(ids)) == 50 and all(i.startswith("k-") for i in ids)
    assert store.new_id(prefix="base").startswith("base-")
    ledger = (tmp_path / "adapters" / ".ids").read_text().splitlines()
    assert ledger[:50] == [f"new\t{i}" for i in ids]
    # a new store on the same root sees the ledger
    assert set(ids) <= AdapterStore(tmp_path / "adapters")._used()


def test_removed_id_is_never_handed_out_again(tmp_path, tiny_model, tiny_tokenizer, monkeypatch):
    store = AdapterStore(tmp_path)
    student = Student(tiny_model, tiny_tokenizer, LORA)
    first = store.new_id()
    student.save(store, first, {"note": "x"})
    store.remove(first)
    assert store.ids() == [] and not store.path(first).exists()
    # force the random part to repeat: the ledger must still refuse the old id
    import student.adapters as adapters

    tokens = iter(["dead", "dead", "beef"])
    monkeypatch.setattr(adapters.secrets, "token_hex", lambda n: next(tokens))
    monkeypatch.setattr(adapters.time, "strftime", lambda fmt: "20250101-000000")
    a = store.new_id()
    assert a == "k-20250101-000000-dead"
    b = store.new_id()  # "dead" again is refused, even though nothing was saved under it
    assert b == "k-20250101-000000-beef"
    with pytest.raises(FileExistsError):
        student.save(store, first, {})  # removed ids cannot be saved again either
    student.save(store, a, {})
    with pytest.raises(FileExistsError):
        student.save(store, a, {})
    assert store.ids() == [a]


def test_save_load_round_trip_is_bit_exact(tmp_path, tiny_model, tiny_tokenizer):
    texts = ["The Eiffel Tower is in Paris.", "Super Bowl 50 was won by the Denver Broncos."]
    student = Student(tiny_model, tiny_tokenizer, LORA)
    student.absorb(texts, TrainSettings(lr=1e-2, epochs=3, batch_size=2, max_len=64))
    store = AdapterStore(tmp_path)
    aid = store.new_id()
    path = student.save(store, aid, {"doc": "d1"})
    assert path == tmp_path / aid and store.ids() == [aid]
    assert store.meta(aid)["doc"] == "d1" and store.meta(aid)["id"] == aid and store.meta(aid)["lora"]["r"] == 4
    assert not list(tmp_path.glob(".tmp-*"))

    loaded = store.load_state(aid)
    original = student.state()
    assert loaded.keys() == original.keys() and len(loaded) > 0
    for k in original:
        assert torch.equal(loaded[k], original[k]), k

    other = Student(make_tiny_model(tiny_tokenizer), tiny_tokenizer, LORA)
    batch = tiny_tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        before = other.model(**batch).logits
        other.load(loaded)
        after = other.model(**batch).logits
        expected = student.model(**batch).logits
    assert not torch.equal(before, expected)
    assert torch.equal(after, expected)
    for k, v in other.state().items():
        assert torch.equal(v, original[k])


def test_load_refuses_pickle(tmp_path):
    store = AdapterStore(tmp_path)
    folder = tmp_path / "k-evil"
    folder.mkdir()
    torch.save({"w": torch.zeros(1)}, folder / "adapter_model.bin")
    (folder / "seal_meta.json").write_text("{}")
    with pytest.raises(ValueError, match="pickle"):
        store.load_state("k-evil")
    with pytest.raises(AdapterError, match="missing"):
        store.load_state("k-missing")
    with pytest.raises(ValueError):
        store.path("../escape")


def test_load_state_reads_safetensors(tmp_path):
    store = AdapterStore(tmp_path)
    (tmp_path / "k-ok" / "knowledge").mkdir(parents=True)
    save_file({"a": torch.arange(3.0)}, str(tmp_path / "k-ok" / "knowledge" / "adapter_model.safetensors"))
    (tmp_path / "k-ok" / "seal_meta.json").write_text("{}")  # saved before checksums: read unchecked
    assert torch.equal(store.load_state("k-ok")["a"], torch.arange(3.0))


class _DyingModel:
    """Stands in for a PeftModel whose process is killed halfway through save_pretrained."""

    active_adapter = "knowledge"

    def save_pretrained(self, path, **kwargs):
        with open(os.path.join(path, "adapter_model.safetensors"), "wb") as f:
            f.write(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)


def _save_and_die(root, adapter_id):
    AdapterStore(root).save(_DyingModel(), adapter_id, {})


def test_killed_save_leaves_only_tmp_and_clean_tmp_removes_it(tmp_path):
    store = AdapterStore(tmp_path)
    aid = store.new_id()
    proc = mp.get_context("fork").Process(target=_save_and_die, args=(tmp_path, aid))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ids", f".tmp-{aid}"]
    assert store.ids() == [] and aid not in store
    assert store.clean_tmp() == [f".tmp-{aid}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ids"]
    assert store.new_id() != aid
