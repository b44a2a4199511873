"""Finding, verifying and downloading scene files.

Files live in ``<data dir>/<scene folder>/<file name>``. The data directory is
``$HSILIB_DATA_DIR`` or, unset, a per-user cache directory. A file already
there (downloaded earlier or placed by hand) is used only after its sha256
matches the registry; downloads go through pooch, which writes to a temporary
file and moves it into place only after the hash check, so a broken or
half-written download never sits in the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import platformdirs
import pooch
import requests

from .scenes import RemoteFile, Scene

ENV_DATA_DIR = "HSILIB_DATA_DIR"
ENV_OFFLINE = "HSILIB_OFFLINE"


class DataIntegrityError(ValueError):
    """A file whose sha256 differs from the registry's."""


class DataNotFoundError(FileNotFoundError):
    """A file that is neither in the data directory nor downloadable now."""


def data_dir() -> Path:
    """The data directory: ``$HSILIB_DATA_DIR`` or the per-user cache."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("hsilib"))


def local_path(scene: Scene, remote: RemoteFile, root: Path | None = None) -> Path:
    """Where ``remote`` is (or would be) in the data directory."""
    return (root or data_dir()) / scene.folder / remote.name


def cached(scene: Scene, root: Path | None = None) -> dict[str, bool]:
    """Which of the scene's files are in the data directory (not verified)."""
    return {f.name: local_path(scene, f, root).exists() for f in scene.files}


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Hashes already checked in this process, keyed by what would change if the
# file were replaced: re-hashing a 130 MB cube on every load is wasted work.
_verified: dict[tuple[str, int, int], str] = {}


def verify(path: Path, remote: RemoteFile) -> str:
    """Return the file's sha256, raising :class:`DataIntegrityError` on mismatch."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    actual = _verified.get(key) or sha256sum(path)
    if remote.sha256 is not None and actual != remote.sha256:
        _verified.pop(key, None)
        raise DataIntegrityError(
            f"{path}: sha256 mismatch (expected {remote.sha256}, got {actual}); "
            "the file is corrupted or not the published one. Delete it and run "
            f"'hsilib data fetch', or replace it with a copy from {remote.url}"
        )
    if remote.sha256 is None and key not in _verified:
        warnings.warn(
            f"{path.name} has no published checksum; using it unverified "
            f"(sha256 {actual})", stacklevel=2,
        )
    _verified[key] = actual
    return actual


OFFLINE_VALUES = {"1": True, "true": True, "yes": True, "on": True,
                  "": False, "0": False, "false": False, "no": False, "off": False}


def offline() -> bool:
    """True when ``$HSILIB_OFFLINE`` forbids downloads (``1``, ``true``,
    ``yes``, ``on``; unset, empty, ``0``, ``false``, ``no`` and ``off`` allow
    them; anything else is an error)."""
    value = os.environ.get(ENV_OFFLINE, "").strip().lower()
    if value not in OFFLINE_VALUES:
        raise ValueError(f"${ENV_OFFLINE}={os.environ[ENV_OFFLINE]!r} is neither on nor off; "
                         f"accepted: {', '.join(repr(v) for v in OFFLINE_VALUES)}")
    return OFFLINE_VALUES[value]


DOWNLOADS = ".downloads"  # partial downloads, one folder per process, inside the data directory


def download(remote: RemoteFile, dest: Path, progressbar: bool = True) -> Path:
    """Download ``remote`` to ``dest`` through pooch, verifying its hash.

    The file is written in a private folder and moved to ``dest`` only once
    complete and verified: a failed or interrupted download leaves nothing in
    the scene's folder (the folder of a process that was killed is removed
    by the next download). Raises :class:`DataIntegrityError` if the
    download's hash is wrong and :class:`DataNotFoundError` if it cannot be
    fetched.
    """
    if offline():
        raise DataNotFoundError(f"downloads are disabled (${ENV_OFFLINE} is set)")
    partial_root = dest.parent.parent / DOWNLOADS
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial_root.mkdir(exist_ok=True)
    except OSError as err:
        raise PermissionError(f"cannot write to the data directory {dest.parent.parent} ({err}); "
                              f"set ${ENV_DATA_DIR} to a writable directory") from None
    _remove_abandoned(partial_root)
    partial = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=partial_root))
    known = f"sha256:{remote.sha256}" if remote.sha256 else None
    pooch.get_logger().setLevel(logging.WARNING)
    try:
        pooch.retrieve(
            remote.url, known_hash=known, fname=dest.name, path=partial,
            progressbar=progressbar,
            downloader=pooch.HTTPDownloader(progressbar=progressbar, timeout=60),
        )
        os.replace(partial / dest.name, dest)
    except requests.RequestException as err:  # some are ValueErrors: catch them first
        raise DataNotFoundError(f"could not download {remote.url}: {type(err).__name__}: {err}") from None
    except ValueError as err:  # pooch's hash mismatch
        raise DataIntegrityError(
            f"download of {remote.url} failed its hash check (expected "
            f"{remote.sha256}): {err}; nothing was written to {dest}"
        ) from None
    except Exception as err:  # network errors come in many types
        raise DataNotFoundError(
            f"could not download {remote.url}: {type(err).__name__}: {err}"
        ) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def _remove_abandoned(partial_root: Path) -> None:
    """Remove the partial-download folders of processes that no longer run."""
    for folder in partial_root.iterdir():
        pid = folder.name.split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fetch(scene: Scene, remote: RemoteFile, download_missing: bool = True,
          progressbar: bool = True) -> Path:
    """Return the verified local path of ``remote``, downloading it if needed."""
    path = local_path(scene, remote)
    if path.exists():
        verify(path, remote)
        return path
    if download_missing:
        try:
            download(remote, path, progressbar=progressbar)
        except DataNotFoundError as err:
            raise _missing_error(scene, remote, path, str(err)) from None
        verify(path, remote)
        return path
    raise _missing_error(scene, remote, path, "downloads not requested")


def _missing_error(scene: Scene, remote: RemoteFile, path: Path, why: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{remote.name} of scene {scene.name!r} is not at {path} ({why}). "
        f"Run 'hsilib data fetch {scene.name}' on a machine with internet, or "
        f"download {remote.url} yourself and place it at {path} "
        f"(set ${ENV_DATA_DIR} to use another data directory)."
    )
