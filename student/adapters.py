"""Versioned adapter store: atomic saves, ids never reused, safetensors-only loading.

Layout under ``root``::

    .ids                    append-only ledger "<event>\t<id>" (new / saved / removed): ids are never reused
    <id>/seal_meta.json     metadata written by ``save``, with the sha256 of the weights (checked on every load)
    <id>/.../adapter_model.safetensors + adapter_config.json   (peft ``save_pretrained``)
    .tmp-<id>               an unfinished save (removed by ``clean_tmp``)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

WEIGHTS_NAME = "adapter_model.safetensors"
META_NAME = "seal_meta.json"
LEDGER_NAME = ".ids"
TMP_PREFIX = ".tmp-"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class AdapterError(ValueError):
    """A stored adapter cannot be used (missing, damaged, pickle weights, a checksum that does not match);
    the message names the adapter and the file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_id(adapter_id: str) -> str:
    if not isinstance(adapter_id, str) or not _ID_RE.match(adapter_id) or ".." in adapter_id:
        raise ValueError(f"invalid adapter id {adapter_id!r}")
    return adapter_id


class AdapterStore:
    """Adapters saved as directories under ``root``, one per id."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.ledger = self.root / LEDGER_NAME

    # ids -----------------------------------------------------------------
    def _ledger(self) -> list[tuple[str, str]]:
        """(event, id) lines of the ledger; events are "new", "saved" and "removed"."""
        if not self.ledger.exists():
            return []
        rows = [line.split("\t") for line in self.ledger.read_text().splitlines()]
        return [(r[0], r[1]) for r in rows if len(r) == 2]

    def _used(self) -> set[str]:
        used = {aid for _, aid in self._ledger()}
        used.update(p.name for p in self.root.iterdir() if not p.name.startswith("."))
        return used

    def _record(self, event: str, adapter_id: str) -> None:
        # one write() on an O_APPEND descriptor: concurrent appends never interleave
        fd = os.open(self.ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{event}\t{adapter_id}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def new_id(self, prefix: str = "k") -> str:
        """A fresh id ``<prefix>-<YYYYmmdd-HHMMSS>-<random>`` never used before; recorded in the ledger."""
        used = self._used()
        while True:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            adapter_id = _check_id(f"{prefix}-{stamp}-{secrets.token_hex(4)}")
            if adapter_id not in used:
                self._record("new", adapter_id)
                return adapter_id

    def ids(self) -> list[str]:
        """Ids of the saved adapters, oldest first."""
        found = [p.name for p in self.root.iterdir()
                 if p.is_dir() and not p.name.startswith(".") and (p / META_NAME).exists()]
        def created(i: str) -> float:
            try:
                return float(self.meta(i).get("created", 0.0))
            except (AdapterError, TypeError, ValueError):
                return 0.0  # a damaged meta is reported when the adapter is loaded, not here
        return sorted(found, key=lambda i: (created(i), i))

    def path(self, adapter_id: str) -> Path:
        """Directory of an adapter (whether or not it exists)."""
        return self.root / _check_id(adapter_id)

    def __contains__(self, adapter_id: str) -> bool:
        return (self.path(adapter_id) / META_NAME).exists()

    # save / load ---------------------------------------------------------
    def save(self, peft_model, adapter_id: str, meta: dict[str, Any] | None = None) -> Path:
        """Save the active adapter of ``peft_model`` atomically as ``root/<adapter_id>``."""
        final = self.path(adapter_id)
        if final.exists() or ("saved", adapter_id) in self._ledger():
            raise FileExistsError(f"adapter {adapter_id!r} exists or existed; ids are never reused")
        tmp = self.root / f"{TMP_PREFIX}{adapter_id}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            name = peft_model.active_adapter
            peft_model.save_pretrained(str(tmp), safe_serialization=True, selected_adapters=[name])
            record = {**(meta or {}), "id": adapter_id, "adapter_name": name, "created": time.time(),
                      "sha256": {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob(WEIGHTS_NAME))}}
            (tmp / META_NAME).write_text(json.dumps(record, indent=2, default=str))
            os.replace(tmp, final)
            self._record("saved", adapter_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def weights_file(self, adapter_id: str) -> Path:
        """The adapter's safetensors file; ``AdapterError`` if it is missing or only pickle weights exist."""
        folder = self.path(adapter_id)
        if not folder.is_dir():
            raise AdapterError(f"adapter {adapter_id}: its folder {folder} is missing")
        found = sorted(folder.rglob(WEIGHTS_NAME))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise AdapterError(f"adapter {adapter_id} holds several weight files: {[str(p) for p in found]}")
        pickles = [p for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise AdapterError(
                f"adapter {adapter_id}: refusing to load pickle weights {pickles[0]} "
                "(only safetensors are loaded: pickle can run arbitrary code)"
            )
        raise AdapterError(f"adapter {adapter_id}: {folder / WEIGHTS_NAME} is missing")

    def load_state(self, adapter_id: str) -> dict[str, torch.Tensor]:
        """Adapter tensors (CPU) read with safetensors only, after checking the sha256 recorded at save (adapters
        saved before checksums were recorded are read unchecked). ``AdapterError`` names what is wrong."""
        path = self.weights_file(adapter_id)
        meta = self.meta(adapter_id)
        sums = meta.get("sha256") if isinstance(meta.get("sha256"), dict) else {}
        rel = str(path.relative_to(self.path(adapter_id)))
        try:
            if rel in sums and sha256_file(path) != sums[rel]:
                raise AdapterError(f"adapter {adapter_id}: {path} is damaged (its sha256 differs from the one "
                                   "recorded when it was saved)")
            if sums and rel not in sums:
                raise AdapterError(f"adapter {adapter_id}: {path} is not the weight file it was saved with")
            return load_file(str(path), device="cpu")
        except AdapterError:
            raise
        except OSError as e:
            raise AdapterError(f"adapter {adapter_id}: cannot read {path} ({e.strerror or e})") from None
        except Exception as e:  # safetensors_rust.SafetensorError and friends: a truncated or garbage file
            raise AdapterError(f"adapter {adapter_id}: {path} is not a readable safetensors file "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None

    def meta(self, adapter_id: str) -> dict[str, Any]:
        """The ``seal_meta.json`` of an adapter (``AdapterError`` if missing or damaged)."""
        path = self.path(adapter_id) / META_NAME
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AdapterError(f"adapter {adapter_id}: {path} is missing") from None
        except OSError as e:
            raise AdapterError(f"adapter {adapter_id}: cannot read {path} ({e.strerror or e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AdapterError(f"adapter {adapter_id}: {path} is damaged (not JSON)") from None
        if not isinstance(meta, dict):
            raise AdapterError(f"adapter {adapter_id}: {path} is damaged (not a JSON object)")
        return meta

    # cleanup -------------------------------------------------------------
    def remove(self, adapter_id: str) -> None:
        """Delete an adapter; its id stays in the ledger and is never handed out again."""
        folder = self.path(adapter_id)
        if not folder.exists():
            raise FileNotFoundError(f"no adapter {adapter_id!r} in {self.root}")
        trash = self.root / f"{TMP_PREFIX}rm-{adapter_id}-{secrets.token_hex(4)}"
        os.replace(folder, trash)  # atomic: a killed remove leaves only a .tmp-* dir
        self._record("removed", adapter_id)
        shutil.rmtree(trash)

    def clean_tmp(self) -> list[str]:
        """Remove ``.tmp-*`` entries left by killed saves/removes; returns their names."""
        removed = []
        for p in self.root.glob(f"{TMP_PREFIX}*"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p.name)
        return sorted(removed)
