"""Book wiring: profiles name only parameters the notebooks declare, and the
notebook sources carry no outputs."""

import json

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
