"""The command line: exit codes, one-line errors, and what each command reports."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hsilib.data.scenes import SCENES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HSILIB_DATA_DIR": str(data_dir), "HSILIB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "hsilib", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def small_cache(tmp_path: Path) -> Path:
    """A writable data directory holding a copy of Pavia University's labels."""
    shutil.copytree(SHARED / "pavia_university", tmp_path / "pavia_university")
    return tmp_path


def test_list_names_every_scene_and_what_is_cached(small_cache):
    result = run("data", "list", data_dir=small_cache)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for name in SCENES:
        assert name in lines
    assert lines["pavia_university"].rstrip().endswith("twin")
    assert lines["indian_pines"].rstrip().endswith("none")


def test_path_prints_the_data_directory(small_cache):
    result = run("data", "path", data_dir=small_cache)
    assert result.returncode == 0
    assert result.stdout.strip() == str(small_cache)


def test_verify_passes_on_intact_files_and_fails_on_a_corrupted_one(small_cache):
    assert run("data", "verify", data_dir=small_cache).returncode == 0
    target = small_cache / "pavia_university" / "PaviaU_gt.mat"
    data = bytearray(target.read_bytes())
    data[200] ^= 0xFF
    target.write_bytes(bytes(data))
    result = run("data", "verify", data_dir=small_cache)
    assert result.returncode == 1
    assert "MISMATCH" in result.stdout and str(target) in result.stdout
    assert result.stderr.startswith("hsilib: error:") and result.stderr.count("\n") == 1


def test_fetch_unknown_scene_lists_known_ones(small_cache):
    result = run("data", "fetch", "no_such_scene", data_dir=small_cache)
    assert result.returncode == 1
    assert "no_such_scene" in result.stderr and "pavia_university" in result.stderr
    assert result.stderr.count("\n") == 1


def test_fetch_offline_says_where_it_looked(small_cache):
    result = run("data", "fetch", "indian_pines", data_dir=small_cache)
    assert result.returncode == 1
    expected = small_cache / "indian_pines" / "Indian_pines_gt.mat"
    assert str(expected) in result.stderr and "hsilib data fetch" in result.stderr


def test_fetch_labels_only_succeeds_when_labels_are_cached(small_cache):
    result = run("data", "fetch", "--no-cube", "pavia_university", data_dir=small_cache)
    assert result.returncode == 0, result.stderr
    assert "TRpavia_fixed.mat" in result.stdout
