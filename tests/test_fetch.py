"""Finding, verifying and downloading scene files.

Downloads go to a local HTTP server on 127.0.0.1 (a random free port, serving a
temporary folder from a daemon thread that a watchdog stops after a few
seconds at most), never to the internet. Scenes and files pointing at it are
made with ``dataclasses.replace`` on a registered scene.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import pooch
import pytest

from hsilib.data import (DataIntegrityError, DataNotFoundError, RemoteFile, Scene, data_dir,
                         fetch, get_scene)

SERVER_LIFETIME_S = 60.0  # the watchdog stops the server after this, whatever happens


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files of a folder; ``/status/<code>/...`` answers with that error."""

    timeout = 10  # a stalled connection cannot hang a test

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        if self.path.startswith("/status/"):
            self.send_error(int(self.path.split("/")[2]))
            return
        super().do_GET()

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep the test output clean
        pass


@pytest.fixture
def server(tmp_path: Path):
    """A local HTTP server: ``root`` (served folder), ``url``, ``requests`` (paths asked)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    httpd.daemon_threads = True
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    watchdog = threading.Timer(SERVER_LIFETIME_S, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}",
                              requests=httpd.requests)
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Allow downloads (only ever to 127.0.0.1 here) and bypass any proxy."""
    monkeypatch.delenv("HSILIB_OFFLINE", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def gt_bytes(shared_data: Path) -> bytes:
    """The real Indian Pines ground truth file, whose sha256 the registry knows."""
    scene = get_scene("indian_pines")
    return (shared_data / scene.folder / scene.gt.name).read_bytes()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local_scene(url: str, sha256: str | None = "registry") -> tuple[Scene, RemoteFile]:
    """Indian Pines, in its own folder, with its ground truth served from ``url``."""
    base = get_scene("indian_pines")
    remote = dataclasses.replace(base.gt, url=url)
    if sha256 != "registry":
        remote = dataclasses.replace(remote, sha256=sha256)
    scene = dataclasses.replace(base, name="local_pines", folder="local_pines", gt=remote)
    return scene, remote


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# --- Data directory -----------------------------------------------------------

def test_data_dir_follows_environment(tmp_data_dir):
    """data_dir() is $HSILIB_DATA_DIR when set."""
    assert data_dir() == tmp_data_dir


def test_data_dir_defaults_to_user_cache(monkeypatch):
    """Without $HSILIB_DATA_DIR the data directory is a per-user 'hsilib' cache."""
    monkeypatch.delenv("HSILIB_DATA_DIR")
    assert data_dir().name == "hsilib"
    assert data_dir().is_absolute()


# --- Downloads from the local server -------------------------------------------

def test_download_success_lands_in_cache(server, online, tmp_data_dir, gt_bytes):
    """A download lands at <data dir>/<scene folder>/<name>, hash-verified, and later
    fetches use the cache instead of the server."""
    (server.root / "gt.mat").write_bytes(gt_bytes)
    scene, remote = _local_scene(f"{server.url}/gt.mat")

    path = fetch(scene, remote, progressbar=False)

    assert path == tmp_data_dir / "local_pines" / "Indian_pines_gt.mat"
    assert path.read_bytes() == gt_bytes
    assert _sha256(path.read_bytes()) == remote.sha256
    assert _files_under(tmp_data_dir) == [path]  # no temporary file left beside it
    assert server.requests == ["/gt.mat"]
    assert fetch(scene, remote, progressbar=False) == path
    assert server.requests == ["/gt.mat"]  # served from the cache the second time


def test_download_without_checksum_warns_with_hash(server, online, tmp_data_dir, gt_bytes):
    """A file with no published checksum is accepted with a warning printing its sha256."""
    (server.root / "gt.mat").write_bytes(gt_bytes)
    scene, remote = _local_scene(f"{server.url}/gt.mat", sha256=None)
    with pytest.warns(UserWarning, match=_sha256(gt_bytes)):
        path = fetch(scene, remote, progressbar=False)
    assert path.read_bytes() == gt_bytes


def test_download_hash_mismatch_leaves_nothing(server, online, tmp_data_dir, gt_bytes):
    """A download with the wrong hash raises DataIntegrityError naming the expected and
    the actual sha256, and leaves no file at (or beside) the destination."""
    corrupted = bytearray(gt_bytes)
    corrupted[len(corrupted) // 2] ^= 0xFF
    (server.root / "gt.mat").write_bytes(bytes(corrupted))
    scene, remote = _local_scene(f"{server.url}/gt.mat")

    with pytest.raises(DataIntegrityError) as info:
        fetch(scene, remote, progressbar=False)

    message = str(info.value)
    assert remote.sha256 in message
    assert _sha256(bytes(corrupted)) in message
    assert not (tmp_data_dir / "local_pines" / "Indian_pines_gt.mat").exists()
    assert _files_under(tmp_data_dir) == []
    assert server.requests == ["/gt.mat"]


@pytest.mark.parametrize("status", [404, 500])
def test_download_server_error(server, online, tmp_data_dir, status):
    """A 404 or 500 raises DataNotFoundError naming the URL, the status and where the
    file was expected, and leaves nothing behind."""
    url = f"{server.url}/status/{status}/gt.mat"
    scene, remote = _local_scene(url)

    with pytest.raises(DataNotFoundError) as info:
        fetch(scene, remote, progressbar=False)

    message = str(info.value)
    dest = tmp_data_dir / "local_pines" / "Indian_pines_gt.mat"
    assert url in message
    assert str(status) in message
    assert str(dest) in message
    assert "hsilib data fetch" in message
    assert not dest.exists()
    assert _files_under(tmp_data_dir) == []
    assert server.requests == [f"/status/{status}/gt.mat"]


def test_download_missing_file_on_server(server, online, tmp_data_dir):
    """A file the server does not have (plain 404) is DataNotFoundError, nothing left."""
    scene, remote = _local_scene(f"{server.url}/no-such-file.mat")
    with pytest.raises(DataNotFoundError, match="404"):
        fetch(scene, remote, progressbar=False)
    assert _files_under(tmp_data_dir) == []


def test_download_connection_refused(online, tmp_data_dir):
    """A server that is not listening gives DataNotFoundError, nothing left."""
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/gt.mat"
    scene, remote = _local_scene(url)
    with pytest.raises(DataNotFoundError) as info:
        fetch(scene, remote, progressbar=False)
    assert url in str(info.value)
    assert _files_under(tmp_data_dir) == []


@pytest.mark.parametrize("url", ["http://", "htp://127.0.0.1/gt.mat"])
def test_malformed_url_is_not_found_not_a_hash_error(online, tmp_data_dir, url):
    """A URL that cannot be fetched at all (no host, unknown scheme) is reported as
    DataNotFoundError, as download() documents, not as a failed hash check."""
    scene, remote = _local_scene(url)
    with pytest.raises(DataNotFoundError) as info:
        fetch(scene, remote, progressbar=False)
    assert "hash" not in str(info.value)
    assert _files_under(tmp_data_dir) == []


def test_download_is_quiet(server, online, tmp_data_dir, gt_bytes):
    """A download logs nothing at INFO: hsilib means to silence pooch's chatter
    ("Downloading data from ..." on stderr) by raising its logger to WARNING."""
    (server.root / "gt.mat").write_bytes(gt_bytes)
    scene, remote = _local_scene(f"{server.url}/gt.mat")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    pooch_logger = pooch.get_logger()  # the logger pooch really writes to
    pooch_logger.addHandler(handler)
    try:
        fetch(scene, remote, progressbar=False)
    finally:
        pooch_logger.removeHandler(handler)
    assert [r.getMessage() for r in records if r.levelno <= logging.INFO] == []


def test_offline_never_contacts_the_server(server, tmp_data_dir, gt_bytes):
    """With HSILIB_OFFLINE=1 fetch raises DataNotFoundError and makes no request."""
    (server.root / "gt.mat").write_bytes(gt_bytes)
    scene, remote = _local_scene(f"{server.url}/gt.mat")
    with pytest.raises(DataNotFoundError) as info:
        fetch(scene, remote, progressbar=False)
    assert "HSILIB_OFFLINE" in str(info.value)
    assert server.requests == []
    assert _files_under(tmp_data_dir) == []


# --- Files placed by hand -------------------------------------------------------

def test_corrupted_file_in_data_dir_raises(tmp_data_dir, gt_bytes):
    """A corrupted file placed by hand raises DataIntegrityError naming its path and
    the expected and actual sha256, whether or not downloads are allowed."""
    scene = get_scene("indian_pines")
    path = tmp_data_dir / scene.folder / scene.gt.name
    path.parent.mkdir()
    corrupted = gt_bytes[:-1] + bytes([gt_bytes[-1] ^ 0x01])
    path.write_bytes(corrupted)

    for download_missing in (False, True):
        with pytest.raises(DataIntegrityError) as info:
            fetch(scene, scene.gt, download_missing=download_missing, progressbar=False)
        message = str(info.value)
        assert str(path) in message
        assert scene.gt.sha256 in message
        assert _sha256(corrupted) in message
    assert path.read_bytes() == corrupted  # left for the user to inspect, not replaced


def test_good_file_in_data_dir_is_used(tmp_data_dir, gt_bytes):
    """A correct file placed by hand is returned without any download."""
    scene = get_scene("indian_pines")
    path = tmp_data_dir / scene.folder / scene.gt.name
    path.parent.mkdir()
    path.write_bytes(gt_bytes)
    assert fetch(scene, scene.gt, download_missing=False) == path


@pytest.mark.parametrize("download_missing", [False, True])
def test_missing_file_with_downloads_disabled(tmp_data_dir, download_missing):
    """A missing file with downloads disabled (not requested, or HSILIB_OFFLINE=1)
    raises DataNotFoundError saying where it was looked for, the URL and the fetch
    command."""
    scene = get_scene("indian_pines")
    with pytest.raises(DataNotFoundError) as info:
        fetch(scene, scene.cube, download_missing=download_missing, progressbar=False)
    message = str(info.value)
    assert str(tmp_data_dir / scene.folder / scene.cube.name) in message
    assert scene.cube.url in message
    assert "hsilib data fetch" in message
    assert isinstance(info.value, FileNotFoundError)
    assert _files_under(tmp_data_dir) == []
