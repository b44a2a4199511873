"""A result store packed into one archive and unpacked elsewhere: exact, and
refused before any write when a file was changed, removed or added."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from hsilib.cli import main
from hsilib.experiments import ResultStore
from hsilib.experiments.archive import MANIFEST, ArchiveError, pack, unpack


def record(key: str) -> dict:
    return {"key": key, "kind": "train", "config": {"model": "mlp"}, "test_predictions": [0, 1],
            "metrics": {"top1": 0.5, "top5": 1.0, "oa": 0.5, "aa": 0.5, "kappa": 0.0},
            "measure": {}, "data_source": "twin", "wall_s": 1.0}


@pytest.fixture()
def store(tmp_path) -> ResultStore:
    store = ResultStore(tmp_path / "store")
    for key in ("aaaa000000000001", "aaaa000000000002"):
        store.put({**record(key), "weights_sha256": store.put_weights(key, {"w": torch.arange(6.0)})})
    store.put(record("aaaa000000000003"))  # a kind without weights
    (store.root / "machine").mkdir()
    (store.root / "machine" / "precision.json").write_text("{}")  # this machine's, not packed
    return store


def files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in root.glob("*") if p.is_file()}


def rewritten(archive: Path, out: Path, change) -> Path:
    """A copy of ``archive`` whose members pass through ``change(name, data)``
    (returning ``None`` drops the member), plus any it returns for ``None``."""
    with tarfile.open(archive) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(out, "w") as tar:
        for name, data in [*members, (None, None)]:
            for new_name, new_data in change(name, data):
                info = tarfile.TarInfo(new_name)
                info.size = len(new_data)
                tar.addfile(info, io.BytesIO(new_data))
    return out


def test_pack_then_unpack_is_the_same_store_byte_for_byte(store, tmp_path):
    archive = tmp_path / "results.tar"
    assert pack(archive, store) == 5
    copy = ResultStore(tmp_path / "elsewhere")
    done = unpack(archive, copy)
    assert (done.written, done.kept) == (5, 0)
    assert files(copy.root) == files(store.root)
    assert copy.load("aaaa000000000001") == store.load("aaaa000000000001")
    weights = copy.load_weights("aaaa000000000002", copy.load("aaaa000000000002")["weights_sha256"])
    assert torch.equal(weights["w"], torch.arange(6.0))
    again = unpack(archive, copy)
    assert (again.written, again.kept) == (0, 5)


def flip_one_byte(name, data):
    if name is None:
        return []
    if name == "aaaa000000000002.pt":
        data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    return [(name, data)]


def drop_a_record(name, data):
    return [] if name in (None, "aaaa000000000003.json") else [(name, data)]


def add_a_file(name, data):
    return [("aaaa000000000009.json", json.dumps(record("aaaa000000000009")).encode())] if name is None \
        else [(name, data)]


def wrong_key(name, data):
    if name is None:
        return []
    if name == MANIFEST:
        manifest = json.loads(data)
        bad = json.dumps(record("bbbb000000000000")).encode()
        manifest["files"]["aaaa000000000003.json"] = hashlib.sha256(bad).hexdigest()
        return [(name, json.dumps(manifest).encode())]
    if name == "aaaa000000000003.json":
        return [(name, json.dumps(record("bbbb000000000000")).encode())]
    return [(name, data)]


@pytest.mark.parametrize("change, message", [
    (flip_one_byte, "aaaa000000000002.pt does not match its sha256"),
    (drop_a_record, "aaaa000000000003.json is listed in the manifest but missing"),
    (add_a_file, "aaaa000000000009.json not in the manifest"),
    (wrong_key, "aaaa000000000003.json is not a valid record"),
])
def test_a_tampered_archive_is_refused_before_any_write(store, tmp_path, change, message):
    archive = tmp_path / "results.tar"
    pack(archive, store)
    bad = rewritten(archive, tmp_path / "bad.tar", change)
    target = ResultStore(tmp_path / "elsewhere")
    target.put(record("cccc000000000000"))
    before = files(target.root)
    with pytest.raises(ArchiveError, match=message):
        unpack(bad, target)
    assert files(target.root) == before


def test_a_truncated_archive_is_refused(store, tmp_path):
    archive = tmp_path / "results.tar"
    pack(archive, store)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[:1500])
    with pytest.raises(ArchiveError):
        unpack(cut, ResultStore(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").glob("*.json"))


def test_the_command_line_packs_and_unpacks(store, tmp_path, capsys):
    archive = tmp_path / "results.tar"
    assert main(["results", "pack", str(archive), "--store", str(store.root)]) == 0
    assert main(["results", "unpack", str(archive), "--store", str(tmp_path / "copy")]) == 0
    assert "wrote 5 files" in capsys.readouterr().out
    assert main(["results", "unpack", str(tmp_path / "nothing.tar"), "--store", str(tmp_path / "x")]) == 1
    assert "not a readable result archive" in capsys.readouterr().err
