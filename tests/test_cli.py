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


def test_models_lists_every_registered_model_with_its_paper_name(small_cache):
    from hsilib.models import MODELS

    result = run("models", data_dir=small_cache)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert list(rows) == list(MODELS)
    assert "CNN2D (c=40)" in rows["cnn2d"] and "sklearn" in rows["svm"]


def test_summary_prints_layers_and_the_paper_totals(small_cache):
    result = run("summary", "cnn2d", "--scene", "pavia_university", data_dir=small_cache)
    assert result.returncode == 0, result.stderr
    layers = {line.split()[0]: line.split() for line in result.stdout.splitlines()
              if line.split() and line.split()[0] in ("conv1", "fc1", "fc2")}
    assert layers["conv1"][2:4] == ["50x15x15", "50,050"]
    assert layers["fc2"][3] == "909"  # 9 classes on Pavia University
    assert "trainable parameters as the paper counts them (conv, linear, LSTM): 426,159" in result.stdout
    assert f"MACs per sample: {50*15*15*40*25 + 100*11*11*50*25 + 2500*100 + 100*9:,}" in result.stdout


def test_summary_options_and_errors(small_cache):
    result = run("summary", "cnn2d", "--components", "1", data_dir=small_cache)
    assert "378,116" in result.stdout  # Table 3's CNN2D (c=1)
    bad = run("summary", "svm", data_dir=small_cache)
    assert bad.returncode == 1 and "scikit-learn" in bad.stderr and "cnn2d" in bad.stderr
    unknown = run("summary", "resnet", data_dir=small_cache)
    assert unknown.returncode == 1 and "unknown model 'resnet'" in unknown.stderr
