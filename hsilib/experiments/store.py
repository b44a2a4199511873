"""The result store: one JSON record per experiment key, and the trained
weights beside it, written atomically and checked when read.

``<root>/<key>.json`` holds a record, ``<root>/<key>.pt`` the weights of the
network it produced (kinds that keep them), whose sha256 the record holds: a
weights file changed on disk is detected, never silently loaded. A record is
checked on load against what every record must hold (its key, a registered
kind, metrics, measurements, predictions); a damaged one is reported with its
path. ``<root>/<key>.lock`` marks a key in progress (see :meth:`ResultStore.claim`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

import platformdirs
import torch

from .config import KINDS, Experiment

ENV_RESULTS_DIR = "HSILIB_RESULTS_DIR"
# What every record holds, whatever its kind.
RECORD_FIELDS = ("key", "kind", "config", "metrics", "measure", "test_predictions",
                 "data_source", "wall_s")
METRIC_FIELDS = ("top1", "top5", "oa", "aa", "kappa")


class CorruptRecordError(ValueError):
    """A stored record or weights file that cannot be trusted."""


def default_root() -> Path:
    """``$HSILIB_RESULTS_DIR``, or ``results/`` in the per-user cache directory."""
    env = os.environ.get(ENV_RESULTS_DIR)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("hsilib")) / "results"


def check_record(record: object, key: str, path: Path) -> dict:
    """``record`` if it is a complete record of ``key``, else a
    :class:`CorruptRecordError` naming ``path`` and what is wrong."""
    problem = None
    if not isinstance(record, dict):
        problem = f"it holds a {type(record).__name__}, not a record"
    elif record.get("key") != key:
        problem = f"its key is {record.get('key')!r}, not {key!r}"
    elif record.get("kind") not in KINDS:
        problem = f"its kind {record.get('kind')!r} is not one of {', '.join(KINDS)}"
    elif missing := [f for f in RECORD_FIELDS if f not in record]:
        problem = f"it lacks {', '.join(missing)}"
    elif not isinstance(record["metrics"], dict) or \
            (missing := [m for m in METRIC_FIELDS if m not in record["metrics"]]):
        problem = f"its metrics lack {', '.join(missing) if isinstance(record['metrics'], dict) else 'everything'}"
    if problem:
        raise CorruptRecordError(f"result record {path} is damaged: {problem}; delete it to recompute")
    return record


class ResultStore:
    """Result records and weights in a directory (default :func:`default_root`)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()

    # ---------------------------------------------------------------- records

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, experiment: Experiment) -> dict | None:
        """The stored record of ``experiment``, or ``None``."""
        return self.load(experiment.key())

    def load(self, key: str) -> dict | None:
        """The checked record under ``key``, or ``None`` when there is none."""
        path = self.path(key)
        try:
            text = path.read_bytes().decode()
            record = json.loads(text)
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CorruptRecordError(f"result record {path} is damaged ({type(err).__name__}: {err}); "
                                     "delete it to recompute") from None
        return check_record(record, key, path)

    def put(self, record: dict) -> Path:
        """Write ``record`` under ``record["key"]`` atomically."""
        path = self.path(record["key"])
        self._write_atomically(path, json.dumps(record).encode())
        return path

    def records(self) -> list[dict]:
        """Every stored record, by file name."""
        return [self.load(p.stem) for p in sorted(self.root.glob("*.json"))]

    # ---------------------------------------------------------------- weights

    def weights_path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def put_weights(self, key: str, state_dict: dict) -> str:
        """Write a ``state_dict`` (moved to the CPU) under ``key`` atomically;
        return the sha256 of the bytes written, for the record."""
        buffer = io.BytesIO()
        torch.save({name: value.detach().cpu() for name, value in state_dict.items()}, buffer)
        data = buffer.getvalue()
        self._write_atomically(self.weights_path(key), data)
        return hashlib.sha256(data).hexdigest()

    def load_weights(self, key: str, sha256: str | None) -> dict | None:
        """The stored ``state_dict`` under ``key`` (on the CPU), or ``None``
        when there is no file. Its bytes must hash to ``sha256`` (the
        record's ``weights_sha256``); a mismatch is a :class:`CorruptRecordError`."""
        path = self.weights_path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise CorruptRecordError(f"stored weights {path} do not match their record (sha256 "
                                     f"{actual}, recorded {sha256}); delete both {path.name} and "
                                     f"{self.path(key).name} to retrain")
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises several kinds on a bad archive
            raise CorruptRecordError(f"stored weights {path} are corrupted ({err}); delete them to "
                                     "retrain") from None

    def shipment(self, key: str) -> tuple[dict, bytes | None]:
        """The record under ``key`` and its weights file's bytes (``None``
        where it keeps none), to store elsewhere with :meth:`receive`."""
        record = self.load(key)
        if record is None:
            raise KeyError(f"no record {key} in {self.root}")
        path = self.weights_path(key)
        return record, (path.read_bytes() if "weights_sha256" in record else None)

    def receive(self, record: dict, weights: bytes | None) -> None:
        """Store a record and its weights' bytes made elsewhere (a worker
        with a store of its own): the bytes must hash to the record's
        ``weights_sha256``; weights first, so a stored record implies them."""
        check_record(record, record["key"], self.path(record["key"]))
        expected = record.get("weights_sha256")
        if (weights is None) != (expected is None) or (
                weights is not None and hashlib.sha256(weights).hexdigest() != expected):
            raise CorruptRecordError(f"weights received for {record['key']} do not match their record "
                                     f"(recorded sha256 {expected})")
        if weights is not None:
            self._write_atomically(self.weights_path(record["key"]), weights)
        self.put(record)

    # ---------------------------------------------------------------- writing

    def _write_atomically(self, path: Path, data: bytes) -> None:
        """``data`` to a temporary file, then renamed to ``path``: a reader
        never sees half a file, and a crash leaves the old one."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def claim(self, key: str, poll_s: float = 0.5) -> Iterator[None]:
        """Hold ``key`` while it runs, so another process asking for it waits
        instead of repeating the work.

        The claim is ``<key>.lock`` (created exclusively, holding the owner's
        host and pid). A claim held by a live process is waited for; one whose
        process has died is broken. Creating it is also the check that the
        store is writable, before any work starts.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PermissionError(f"cannot create the result store {self.root}: {err}") from None
        lock = self.root / f"{key}.lock"
        owner = f"{socket.gethostname()} {os.getpid()}"
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _stale(lock):
                    lock.unlink(missing_ok=True)
                else:
                    time.sleep(poll_s)
                continue
            except OSError as err:
                raise PermissionError(f"the result store {self.root} is not writable ({err}); "
                                      f"set {ENV_RESULTS_DIR} to a writable directory") from None
            with os.fdopen(fd, "w") as fh:
                fh.write(owner)
            break
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def _stale(lock: Path) -> bool:
    """A lock whose owner, on this host, is no longer running (or unreadable)."""
    try:
        host, pid = lock.read_text().split()
    except (OSError, ValueError):
        # Being written this instant, or garbage: garbage older than a minute is stale.
        with contextlib.suppress(OSError):
            return time.time() - lock.stat().st_mtime > 60
        return False
    if host != socket.gethostname():
        return False  # another machine's process: cannot tell, wait
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def as_store(store: "ResultStore | str | Path | None") -> ResultStore:
    """``store`` itself, or a :class:`ResultStore` at that path (``None``: the default)."""
    return store if isinstance(store, ResultStore) else ResultStore(store)
