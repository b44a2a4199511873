"""A result store as one verified file: records and weights moved between
machines (a cluster's run published with the book) without trusting the way.

:func:`pack` writes every record (``<key>.json``) and weights file
(``<key>.pt``) of a store into a tar archive with a manifest of their
sha256 (``MANIFEST.json``). :func:`unpack` reads the archive twice: first it
checks every file against the manifest (a file changed, missing or not
listed is refused, naming it) and every record against its key; only then
does it write anything, each file atomically. Keys already in the store are
kept as they are (a key names one experiment; the store is its cache).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .store import ResultStore, as_store, check_record

MANIFEST = "MANIFEST.json"
FORMAT = 1


class ArchiveError(ValueError):
    """An archive that cannot be trusted; nothing was written."""


@dataclass(frozen=True)
class Unpacked:
    """What :func:`unpack` did: files written, and files whose key the store already held."""

    written: int
    kept: int


def _store_files(store: ResultStore) -> list[Path]:
    return sorted(p for p in store.root.glob("*") if p.is_file() and p.suffix in (".json", ".pt")
                  and not p.name.startswith("."))


def pack(archive: str | Path, store: ResultStore | str | Path | None = None,
         keys: set[str] | None = None) -> int:
    """Write every record and weights file of ``store`` (only those of
    ``keys``, where given) with a sha256 manifest to the tar archive
    ``archive`` (atomically); the number of files."""
    store, archive = as_store(store), Path(archive)
    files = [p for p in _store_files(store) if keys is None or p.stem in keys]
    if not files:
        raise ValueError(f"the result store {store.root} holds no records to pack"
                         + ("" if keys is None else " among the runs asked for"))
    manifest = {"format": FORMAT, "files": {}}
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
            for path in files:
                data = path.read_bytes()
                manifest["files"][path.name] = hashlib.sha256(data).hexdigest()
                _add(tar, path.name, data)
            _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(files)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def unpack(archive: str | Path, store: ResultStore | str | Path | None = None) -> Unpacked:
    """Verify every file of ``archive`` against its manifest, then write
    them into ``store``; an :class:`ArchiveError` (and an unchanged store)
    when any file is changed, missing, unlisted or not a valid record."""
    store, archive = as_store(store), Path(archive)
    manifest = _verified(archive)
    written = kept = 0
    with tarfile.open(archive, mode="r") as tar:
        for member in tar.getmembers():
            if member.name == MANIFEST:
                continue
            target = store.root / member.name
            if target.exists():
                kept += 1
                continue
            data = tar.extractfile(member).read()
            if hashlib.sha256(data).hexdigest() != manifest[member.name]:  # changed since it was checked
                raise ArchiveError(f"{archive}: {member.name} changed while it was unpacked")
            store._write_atomically(target, data)
            written += 1
    return Unpacked(written, kept)


def _verified(archive: Path) -> dict[str, str]:
    """The manifest's sha256 by file name, once every file has been checked."""
    try:
        tar = tarfile.open(archive, mode="r")
    except (OSError, tarfile.TarError) as err:
        raise ArchiveError(f"{archive} is not a readable result archive ({err})") from None
    with tar:
        try:
            members = {m.name: m for m in tar.getmembers()}
        except (tarfile.TarError, EOFError) as err:
            raise ArchiveError(f"{archive} is truncated or damaged ({err})") from None
        if MANIFEST not in members:
            raise ArchiveError(f"{archive} has no {MANIFEST}; it was not written by `hsilib results pack`")
        try:
            manifest = json.loads(tar.extractfile(members[MANIFEST]).read())
            files = manifest["files"]
        except (ValueError, KeyError, TypeError, tarfile.TarError) as err:
            raise ArchiveError(f"{archive}: {MANIFEST} is damaged ({err})") from None
        if manifest.get("format") != FORMAT:
            raise ArchiveError(f"{archive}: archive format {manifest.get('format')!r}, this hsilib reads {FORMAT}")
        unlisted = sorted(set(members) - set(files) - {MANIFEST})
        if unlisted:
            raise ArchiveError(f"{archive}: {', '.join(unlisted)} not in the manifest")
        for name in sorted(files):
            member = members.get(name)
            if member is None:
                raise ArchiveError(f"{archive}: {name} is listed in the manifest but missing")
            if not member.isfile() or "/" in name or name.startswith(".") or \
                    Path(name).suffix not in (".json", ".pt"):
                raise ArchiveError(f"{archive}: {name} is not a record or weights file")
            try:
                data = tar.extractfile(member).read()
            except (tarfile.TarError, EOFError, OSError) as err:
                raise ArchiveError(f"{archive}: {name} cannot be read ({err})") from None
            if hashlib.sha256(data).hexdigest() != files[name]:
                raise ArchiveError(f"{archive}: {name} does not match its sha256 in the manifest")
            if name.endswith(".json"):
                try:
                    check_record(json.loads(data), Path(name).stem, Path(name))
                except ValueError as err:  # bad JSON, or CorruptRecordError
                    raise ArchiveError(f"{archive}: {name} is not a valid record ({err})") from None
    return files
