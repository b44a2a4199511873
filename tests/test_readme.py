"""The README's examples run as written: its ``hsilib`` commands, its
papermill command and its Python blocks (on the twin; where they would train
for long, with a smoke-size configuration)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# Where an example trains for long, the test trains briefly.
SMOKE = {"epochs=20": "epochs=1", "seed=[0, 1, 2]": "seed=[0]", "qat_epochs=3": "qat_epochs=1",
         'scene=["indian_pines", "pavia_university"]': 'scene=["indian_pines"]',
         "finetune_epochs=2": "finetune_epochs=1"}


# Blocks that need what one machine lacks (a batch system): compiled, not run.
NOT_ON_ONE_MACHINE = ("dask_jobqueue",)


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def commands(prefix: str) -> list[str]:
    """Shell commands of the README's bash blocks starting with ``prefix``
    (continuation lines joined, comments dropped)."""
    found = []
    for block in blocks("bash"):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split(" # ")[0].strip()
            if command.startswith(prefix):
                found.append(command)
    return found


def test_the_readme_has_the_examples_this_file_runs():
    assert len(commands("hsilib ")) >= 6
    assert len(commands(".venv/bin/papermill ")) == 1
    assert len(blocks("python")) >= 3
    assert all(any(old in block for block in blocks("python")) for old in SMOKE)


@pytest.mark.parametrize("command", [c for c in commands("hsilib ")
                                     if not c.startswith(("hsilib data fetch", "hsilib book run", "hsilib results"))])
def test_every_hsilib_command_runs(command, capsys):
    from hsilib.cli import main

    code = main(shlex.split(command)[1:])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.strip()


@pytest.fixture(params=["cube present", "labels only"])
def data_dir_for_fetch(request, shared_data):
    """Offline, ``data fetch`` succeeds where every file is already there and
    fails clearly where the cube is missing."""
    if request.param == "cube present":
        request.getfixturevalue("real_cube_here")
        return True
    request.getfixturevalue("no_cube_here")
    return False


def test_the_archive_commands_move_a_store(tmp_path, monkeypatch, capsys):
    from hsilib.cli import main
    from hsilib.experiments import Config, ResultStore, run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HSILIB_RESULTS_DIR", str(tmp_path / "results"))
    record = run(Config(model="mlp", epochs=1, data_source="twin", precision="fp32"), device="cpu", progress=False)
    archive_commands = commands("hsilib results ")
    assert [c.split()[2] for c in archive_commands] == ["pack", "unpack"]
    for command in archive_commands:
        assert main(shlex.split(command)[1:]) == 0, capsys.readouterr().err
    assert ResultStore(tmp_path / "elsewhere").load(record["key"]) == record


def test_the_cluster_command_reaches_the_book_runner_with_its_scheduler(monkeypatch):
    """The README's cluster command, as parsed (running it needs a cluster
    and days: tests/test_cluster.py runs a chapter on a local one)."""
    from hsilib import book
    from hsilib.cli import main

    [command] = [c for c in commands("hsilib book run ") if "--scheduler" in c]
    seen = {}
    monkeypatch.setattr(book, "run_notebooks", lambda profile, notebooks, scheduler: seen.update(
        profile=profile, notebooks=notebooks, scheduler=scheduler))
    assert main(shlex.split(command)[1:]) == 0
    assert seen == {"profile": "full", "notebooks": None, "scheduler": "tcp://scheduler-host:8786"}


@pytest.mark.parametrize("command", commands("hsilib data fetch "))
def test_the_fetch_command_finds_what_is_there_and_names_what_is_missing(command, capsys,
                                                                         data_dir_for_fetch):
    from hsilib.cli import main

    code = main(shlex.split(command)[1:])
    out = capsys.readouterr()
    if data_dir_for_fetch:
        assert code == 0, out.err
        assert "Indian_pines_corrected.mat" in out.out
    else:
        assert code == 1 and "downloads are disabled" in out.err
        assert "Indian_pines_corrected.mat" in out.err


@pytest.mark.slow
def test_the_papermill_example_runs(tmp_path):
    command = shlex.split(commands(".venv/bin/papermill ")[0])
    command = [sys.executable, "-m", "papermill", *(str(ROOT / a) if a.startswith("notebooks/") else a
                                                    for a in command[1:])]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out.ipynb").stat().st_size > 10_000


@pytest.mark.slow
def test_the_python_examples_run_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HSILIB_RESULTS_DIR", str(tmp_path / "results"))
    namespace: dict = {}
    for block in blocks("python"):
        if any(f"import {module}" in block or f"from {module} " in block for module in NOT_ON_ONE_MACHINE):
            compile(block, "README.md", "exec")
            continue
        for old, new in SMOKE.items():
            block = block.replace(old, new)
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert namespace["record"]["kind"] == "quantize"
    assert namespace["scratch"]["measure"]["params"] == 49_321
    assert namespace["taps"]["conv2"].shape[1:] == (100, 11, 11)
    assert namespace["pruned"].widths == (15, 30, 30)
    assert namespace["student"]["family"] == "offline"
    assert abs(namespace["lowrank"]["measure"]["params"] - 8_951) <= 0.02 * 8_951
    assert [r["kind"] for r in namespace["pipelines"]] == ["quantize"] * 3
    # The README's runs are Table 3's CNN2D (and more): on the real cube here, scored; on the twin, not.
    card = namespace["card"]
    assert 3 in card.index and card.loc[3, "real cells"] + card.loc[3, "twin cells (excluded)"] >= 1
