"""The shared model cache: where it is, one conversion per machine under a lock, damaged copies converted again.
The real dequantization is replaced by a writer of a tiny model folder, so these tests need no model."""
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from agent import models
from agent.errors import BadInput

NAME = models.EMBEDDED_NAME


def fake_dequantize(out: Path) -> None:
    """Write a tiny model folder, slowly, and append a line to the cache's marker file for each conversion."""
    out = Path(out)
    with open(out.parent / "conversions.log", "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(0.5)  # long enough for a second process to arrive while this one converts
    (out / "config.json").write_text(json.dumps({"model_type": "llama"}))
    save_file({"w": torch.arange(64, dtype=torch.float32).reshape(8, 8)}, str(out / "model.safetensors"))


def conversions(cache: Path) -> int:
    log = cache / "conversions.log"
    return len(log.read_text().split()) if log.exists() else 0


def convert_in_child(cache: str, start_at: float, results) -> None:
    models.dequantize_embedded = fake_dequantize
    time.sleep(max(0.0, start_at - time.time()))
    results.put(str(models.convert_embedded(Path(cache))))


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(models, "dequantize_embedded", fake_dequantize)
    for var in ("SEAL_AGENT_MODEL_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)


def test_two_processes_converting_at_once_run_one_conversion(tmp_path):
    cache = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 3.0  # both children are up by then (spawn re-imports torch)
    procs = [ctx.Process(target=convert_in_child, args=(str(cache), start_at, results)) for _ in range(2)]
    for p in procs:
        p.start()
    paths = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert paths == [str(cache / NAME)] * 2
    assert conversions(cache) == 1
    assert models.converted_ok(cache / NAME)
    assert list(cache.glob(".convert-*")) == []


def test_a_finished_conversion_is_not_repeated_and_stale_temp_dirs_go(tmp_path, fake):
    cache = tmp_path / "cache"
    stale = cache / ".convert-killed"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    assert models.convert_embedded(cache) == cache / NAME
    assert models.convert_embedded(cache) == cache / NAME
    assert conversions(cache) == 1
    assert list(cache.glob(".convert-*")) == []


def test_a_truncated_model_file_is_converted_again(tmp_path, fake):
    cache = tmp_path / "cache"
    target = models.convert_embedded(cache)
    weights = target / "model.safetensors"
    full = weights.read_bytes()
    weights.write_bytes(full[: len(full) // 2])
    assert not models.converted_ok(target)
    assert models.convert_embedded(cache) == target
    assert conversions(cache) == 2
    assert weights.read_bytes() == full


def test_a_copy_without_config_is_converted_again(tmp_path, fake):
    cache = tmp_path / "cache"
    target = models.convert_embedded(cache)
    (target / "config.json").unlink()
    models.convert_embedded(cache)
    assert conversions(cache) == 2
    assert (target / "config.json").is_file()


def test_a_cache_under_a_regular_file_is_one_line_bad_input(tmp_path, fake):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = blocker / "models"
    with pytest.raises(BadInput) as e:
        models.convert_embedded(cache)
    message = str(e.value)
    assert str(cache) in message and "\n" not in message
    assert "Not a directory" in message


def test_the_default_cache_follows_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SEAL_AGENT_MODEL_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert models.model_cache() == tmp_path / "h" / ".cache" / "seal-agent" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert models.model_cache() == tmp_path / "h" / ".cache" / "seal-agent" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.model_cache() == tmp_path / "xdg" / "seal-agent" / "models"
    monkeypatch.setenv("SEAL_AGENT_MODEL_CACHE", str(tmp_path / "mine"))
    assert models.model_cache() == tmp_path / "mine"


def test_resolve_converts_into_the_shared_cache_once_for_every_home(tmp_path, monkeypatch, fake):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "xdg" / "seal-agent" / "models"
    first = models.resolve("embedded", tmp_path / "home1")
    second = models.resolve("embedded", tmp_path / "home2")
    assert first == second == str(shared / NAME)
    assert conversions(shared) == 1
    assert not (tmp_path / "home1" / "models").exists()


def test_resolve_uses_the_env_cache(tmp_path, monkeypatch, fake):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SEAL_AGENT_MODEL_CACHE", str(tmp_path / "mine"))
    assert models.resolve("embedded", tmp_path / "home") == str(tmp_path / "mine" / NAME)
    assert conversions(tmp_path / "mine") == 1
    assert not (tmp_path / "xdg").exists()


def test_a_complete_copy_in_an_older_home_is_used_and_a_damaged_one_is_not(tmp_path, monkeypatch, fake):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    home = tmp_path / "home"
    earlier = models.convert_embedded(home / "models")
    assert models.resolve("embedded", home) == str(earlier)
    assert not (tmp_path / "xdg").exists()
    (earlier / "model.safetensors").write_bytes(b"\0" * 4)
    assert models.resolve("embedded", home) == str(tmp_path / "xdg" / "seal-agent" / "models" / NAME)
