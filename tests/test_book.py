"""Book wiring: profiles name only parameters the notebooks declare, and the
notebook sources carry no outputs."""

import json
import os

import pytest

from hsilib.book import notebook_defaults, notebook_sources
from hsilib.profiles import PROFILES, profile_parameters


def test_there_are_notebooks():
    assert "02_datasets" in notebook_sources()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profiles_set_only_declared_parameters(profile):
    sources = notebook_sources()
    for stem, params in PROFILES[profile].items():
        assert stem in sources, f"profile {profile} names unknown notebook {stem}"
        undeclared = set(params) - set(notebook_defaults(stem))
        assert not undeclared, f"{profile}/{stem} sets undeclared parameters {undeclared}"


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'fast'.*smoke, quick, full"):
        profile_parameters("fast", "02_datasets")


@pytest.mark.parametrize("stem", sorted(notebook_sources()))
def test_sources_have_no_outputs(stem):
    cells = json.loads(notebook_sources()[stem].read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code)


def test_notebook_defaults_reads_the_parameters_cell():
    defaults = notebook_defaults("02_datasets")
    assert defaults["n_components"] == 40 and defaults["data_source"] == "auto"
    with pytest.raises(ValueError, match="unknown notebook '99_nope'"):
        notebook_defaults("99_nope")


@pytest.mark.parametrize("stem", sorted(notebook_sources()))
def test_every_chapter_opens_with_its_title(stem):
    first = json.loads(notebook_sources()[stem].read_text())["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# ")


@pytest.mark.parametrize("stem", sorted(notebook_sources()))
def test_code_is_collapsed_except_the_parameters(stem):
    cells = json.loads(notebook_sources()[stem].read_text())["cells"]
    for cell in (c for c in cells if c["cell_type"] == "code"):
        tags = cell.get("metadata", {}).get("tags", [])
        assert ("parameters" in tags) != ("hide-input" in tags), (stem, cell.get("id"), tags)


def _run_one_chapter(tmp_path, monkeypatch, stem: str, parameters: str, body: str):
    """Run a two-cell chapter (``parameters`` cell, then ``body``) through the
    book runner at the smoke profile; return the folder it wrote to."""
    import nbformat

    from hsilib import book

    sources, outputs = tmp_path / "notebooks", tmp_path / "book"
    sources.mkdir()
    chapter = nbformat.v4.new_notebook()
    chapter.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                     nbformat.v4.new_code_cell(body)]
    nbformat.write(chapter, sources / f"{stem}.ipynb")
    monkeypatch.setattr(book, "SOURCES", sources)
    monkeypatch.setattr(book, "OUTPUTS", outputs)
    book.run_notebooks("smoke")
    return outputs


@pytest.mark.slow
def test_book_run_shows_progress_and_records_each_chapters_time(tmp_path, monkeypatch, capfd):
    """A two-cell chapter reporting three runs: the terminal shows them, and
    not the kernel's own log; the "About this build" page lists the chapter
    with its measured time."""
    outputs = _run_one_chapter(
        tmp_path, monkeypatch, "01_tiny", "runs = 3",
        "import time\nfrom hsilib.progress import report_progress\n"
        "for done in range(1, runs + 1):\n"
        "    time.sleep(0.4)\n"
        "    report_progress(done, runs, f'run {done}')\n")
    shown = capfd.readouterr().err
    assert "[IPKernelApp]" not in shown
    assert "01_tiny: runs" in shown and "3/3" in shown and "run 3" in shown
    info = json.loads((outputs / "build_info.json").read_text())
    seconds = info["chapters"]["01_tiny"]["seconds"]
    assert seconds >= 1.2  # the cell sleeps 3 x 0.4 s
    assert info["machine"]["cores"] >= 1 and set(info["data_sources"]) == {"indian_pines", "pavia_university"}
    about = (outputs / "about.md").read_text()
    assert about.startswith("# About this build")
    assert f"| 01_tiny | smoke | {seconds / 60:.1f} |" in about
    assert info["machine"]["cpu"] in about
    # The tests run as on a CPU without native bf16: "auto" is fp32 for every network, and says why.
    assert set(info["precisions"]) == {"mlp", "lstm", "cnn1d", "cnn2d_c1", "cnn2d", "cnn3d"}
    assert "| cnn3d | fp32 | bfloat16 not native here" in about


def test_the_about_page_names_each_precision_and_its_measurement():
    from hsilib.book import precision_rows

    rows = precision_rows({"cnn2d": {"precision": "bf16", "native_bf16": True,
                                     "seconds": {"fp32": 0.3, "bf16": 0.15}},
                           "mlp": {"precision": "fp32", "native_bf16": True,
                                   "seconds": {"fp32": 0.01, "bf16": 0.0098}}})
    assert rows.splitlines() == [
        "| cnn2d | bf16 | benchmark: 300 ms a training step in fp32, 150 ms in bf16 |",
        "| mlp | fp32 | benchmark: 10 ms a training step in fp32, 10 ms in bf16 |"]


# The Discussion chapter's name for each earlier chapter's parameter.
SHARED_WITH_DISCUSSION = {
    "04_pruning": {"dataset": "dataset", "split": "split", "seeds": "seeds", "epochs": "epochs",
                   "epochs_by_model": "epochs_by_model", "precision": "precision",
                   "data_source": "data_source", "methods": "pruning_methods", "ratios": "ratios",
                   "strategies": "strategies", "finetune_epochs": "finetune_epochs"},
    "05_quantization": {"modes": "quant_modes", "qat_epochs": "qat_epochs"},
    "06_distillation": {"dataset": "dataset", "split": "split", "seeds": "seeds", "epochs": "epochs",
                        "methods": "distillation_methods", "students": "students"},
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_discussion_chapter_finds_the_earlier_chapters_networks(profile):
    """Its parameters equal theirs in every profile, so their stored runs are cache hits."""
    def effective(stem):
        return {**notebook_defaults(stem), **profile_parameters(profile, stem)}

    discussion = effective("07_discussion")
    for stem, names in SHARED_WITH_DISCUSSION.items():
        theirs = effective(stem)
        for their_name, our_name in names.items():
            assert discussion[our_name] == theirs[their_name], (profile, stem, their_name)
    quantization = effective("05_quantization")
    assert discussion["quant_models"] == [*quantization["models"], *quantization["preview_models"]]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_scorecard_reads_back_the_paper_chapters_runs(profile):
    """Its parameters equal the Discussion's (which equal the earlier chapters'), in every profile."""
    def effective(stem):
        return {**notebook_defaults(stem), **profile_parameters(profile, stem)}

    scorecard, discussion = effective("08_scorecard"), effective("07_discussion")
    shared = set(scorecard) & set(discussion)
    assert shared >= {"dataset", "split", "seeds", "epochs", "ratios", "students", "finetune_epochs"}
    assert {k: scorecard[k] for k in shared} == {k: discussion[k] for k in shared}


@pytest.mark.slow
def test_figures_render_whatever_mplbackend_says(tmp_path, monkeypatch):
    """Under MPLBACKEND=Agg (headless servers, CI) a kernel's plt.show()
    draws nothing; the book runner's chapters still hold every figure."""
    import nbformat

    monkeypatch.setenv("MPLBACKEND", "Agg")
    outputs = _run_one_chapter(
        tmp_path, monkeypatch, "01_figures", "figures = 2",
        "import matplotlib.pyplot as plt\n"
        "for i in range(figures):\n"
        "    plt.plot([0, 1], [i, 1 - i])\n"
        "    plt.show()\n")
    executed = nbformat.read(outputs / "01_figures.ipynb", as_version=4)
    images = [o for cell in executed.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2
    assert os.environ["MPLBACKEND"] == "Agg"  # the runner's own environment is left as it was


@pytest.mark.parametrize("stem", sorted(notebook_sources()))
def test_every_chapter_ends_with_exercises_and_collapsed_solutions(stem):
    """Two to four exercises after the chapter's "Exercises" heading, each
    naming the parameters or the hsilib call that answers it, each with a
    solution collapsed (a dropdown)."""
    import re

    cells = json.loads(notebook_sources()[stem].read_text())["cells"]
    texts = ["".join(c["source"]) for c in cells]
    start = next(i for i, t in enumerate(texts) if t.startswith("## Exercises"))
    assert all(c["cell_type"] == "markdown" for c in cells[start:])
    tail = "\n".join(texts[start:])
    questions = re.findall(r"^:::\{exercise\}[^\n]*\n:label: (\S+)\n(.*?)^:::$", tail, re.S | re.M)
    assert 2 <= len(questions) <= 4, stem
    for label, question in questions:
        assert re.search(r"-p \w+|hsilib \w+|make book", question), (stem, label)
        assert re.search(rf"^:::\{{solution\}} {re.escape(label)}\n:class: dropdown\n", tail, re.M), (stem, label)


# Figures each chapter draws at the smoke profile (its plt.show() calls, loops counted out).
SMOKE_FIGURES = {"03_baselines": 2, "04_pruning": 5, "06_distillation": 3, "07_discussion": 3}


@pytest.mark.parametrize("stem", sorted(SMOKE_FIGURES))
def test_the_built_pages_hold_their_figures(stem):
    """In the built HTML (whatever MPLBACKEND the build ran under): a page
    that lost its figures to a non-interactive backend fails here."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "_build" / "html" / "book" / f"{stem}.html"
    if not page.exists():
        pytest.skip("no built book here (make book PROFILE=smoke builds one)")
    images = re.findall(r'<img [^>]*src="\.\./_images/[^"]+\.png"', page.read_text())
    assert len(images) >= SMOKE_FIGURES[stem], f"{page.name}: {len(images)} figures"
