"""The command line: exit codes, one-line errors, and what each command reports."""

import io
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from hsilib.data.scenes import SCENES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    """The command line run in this process (what ``python -m hsilib`` runs,
    see the last test), with ``data_dir`` as the data directory, offline."""
    from hsilib.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.setenv("HSILIB_DATA_DIR", str(data_dir))
        patch.setenv("HSILIB_OFFLINE", "1")
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse refuses bad arguments this way
            code = exit.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


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


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: exit code, stdout, stderr."""
    from hsilib.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse refuses bad arguments this way
        code = exit.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_summary_of_a_table_5_network_prints_table_4s_counts(capsys):
    code, out, err = in_process(capsys, "summary", "cnn2d", "--scene", "indian_pines",
                                "--widths", "15,30,30")
    assert code == 0, err
    params = {line.split()[0]: line.split()[3] for line in out.splitlines()
              if line.split() and line.split()[0] in ("conv1", "conv2", "fc1", "fc2")}
    assert params == {"conv1": "15,015", "conv2": "11,280", "fc1": "22,530", "fc2": "496"}
    assert "(conv, linear, LSTM): 49,321" in out and "all parameters (PyTorch's count): 49,411" in out


@pytest.mark.parametrize("args, message", [
    (("--patch", "0"), "--patch: must be a positive integer, got 0"),
    (("--components", "0"), "--components: must be a positive integer, got 0"),
    (("--components", "-3"), "--components: must be a positive integer, got -3"),
    (("--patch", "18"), "--patch must be odd, got 18"),
    (("--widths", "15,x"), "--widths: must be positive integers separated by commas"),
    (("--widths", "15,30"), r"widths must be 3 positive integers \(conv1, conv2, fc1\)"),
])
def test_summary_refuses_what_it_cannot_build(capsys, args, message):
    code, _, err = in_process(capsys, "summary", "cnn2d", *args)
    assert code != 0
    assert re.search(message, err), err


def test_methods_lists_every_compression_method_with_its_family_and_source(capsys):
    from hsilib.compress import METHODS

    code, out, _ = in_process(capsys, "methods")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert list(rows) == list(METHODS)
    assert "Static Quantization" in rows["static"] and "quantization" in rows["static"]
    assert "Jacob et al." in rows["qat"]
    # Columns line up whatever the longest name: each title and family starts
    # where its header does.
    header = out.splitlines()[0]
    for method in METHODS.values():
        title_at = rows[method.name].index(method.title)
        assert title_at == header.index("paper name")
        assert rows[method.name].index(method.family, title_at + len(method.title)) == header.index("family")


def test_python_dash_m_hsilib_is_the_same_command_line(small_cache):
    env = {**os.environ, "HSILIB_DATA_DIR": str(small_cache), "HSILIB_OFFLINE": "1"}
    ok = subprocess.run([sys.executable, "-m", "hsilib", "data", "path"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip() == str(small_cache)
    bad = subprocess.run([sys.executable, "-m", "hsilib", "summary", "resnet"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith("hsilib: error: unknown model 'resnet'")
