"""The bibliography (book/references.bib) agrees with the methods' sources
(``hsilib methods``), and each chapter cites the sources of the methods it
introduces."""

import json
import re
from pathlib import Path

import pytest

from hsilib.book import notebook_sources
from hsilib.compress import METHODS

pybtex = pytest.importorskip("pybtex.database", reason="pybtex comes with the 'book' extra")

REPO_ROOT = Path(__file__).resolve().parents[1]
BIB = REPO_ROOT / "book" / "references.bib"
# The chapter that introduces each family's methods.
CHAPTER_OF_FAMILY = {"pruning": "04_pruning", "quantization": "05_quantization",
                     "distillation": "06_distillation", "low-rank": "07_discussion"}
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")


def entries() -> dict:
    return pybtex.parse_file(BIB).entries


def publications(source: str) -> list[tuple]:
    """(first author's surname, year, the paper's reference number) of each
    publication a method's source names; ``None`` where it does not say.
    Parts naming neither a year nor a reference ("PyTorch FX QAT") are software."""
    found = []
    for part in source.split(";"):
        year = re.search(r"\b(?:19|20)\d\d\b", part)
        ref = re.search(r"ref\. \[(\d+)\]", part)
        surname = re.match(r"\s*([A-Z][\w-]+)(?: et al\.|,| and )", part)
        if year or ref:
            found.append((surname and year and surname.group(1), year and year.group(), ref and ref.group(1)))
    return found


def matches(entry, surname, year, ref) -> bool:
    first = entry.persons["author"][0].last_names[0] if "author" in entry.persons else None
    return ((surname is None or first == surname) and (year is None or entry.fields.get("year") == year)
            and (ref is None or entry.fields.get("paperref") == ref))


def keys_of(method) -> list[str]:
    """The bibliography keys of a method's sources: exactly one entry each."""
    bib, keys = entries(), []
    for publication in publications(method.source):
        hits = [key for key, entry in bib.items() if matches(entry, *publication)]
        assert len(hits) == 1, f"{method.name}: source {publication} matches {hits or 'no entry'} in {BIB.name}"
        keys += hits
    return keys


def cited_in(text: str) -> set[str]:
    return {key.strip() for group in CITE.findall(text) for key in group.split(",")}


def markdown_of(stem: str) -> str:
    cells = json.loads(notebook_sources()[stem].read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_source_parsing():
    assert publications("Li et al., ICLR 2017 (the paper's ref. [49])") == [("Li", "2017", "49")]
    assert publications("the paper's ref. [18]; Jacob et al., CVPR 2018; PyTorch FX post-training") == [
        (None, None, "18"), ("Jacob", "2018", None)]
    assert publications("Zagoruyko and Komodakis, 2017") == [("Zagoruyko", "2017", None)]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_methods_source_is_in_the_bibliography(name):
    method = METHODS[name]
    assert publications(method.source), f"{name}: its source names no publication: {method.source!r}"
    keys_of(method)


def test_a_source_the_bibliography_lacks_fails():
    from hsilib.compress.methods import Method

    with pytest.raises(AssertionError, match="matches no entry"):
        keys_of(Method("x", "X", "pruning", "prune", "Nobody et al., 1999 (the paper's ref. [999])"))
    with pytest.raises(AssertionError, match="matches no entry"):  # right author, wrong reference number
        keys_of(Method("x", "X", "pruning", "prune", "Li et al., ICLR 2017 (the paper's ref. [50])"))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_is_cited_where_its_chapter_introduces_it(name):
    method = METHODS[name]
    family = method.family.split(" (")[0]
    stem = CHAPTER_OF_FAMILY[family]
    missing = set(keys_of(method)) - cited_in(markdown_of(stem))
    assert not missing, f"{stem} introduces {method.title} without citing {sorted(missing)}"


def test_every_entry_is_cited_and_every_citation_has_an_entry():
    pages = [markdown_of(stem) for stem in notebook_sources()]
    pages += [p.read_text() for p in (REPO_ROOT / "book").glob("*.md")]
    cited = set().union(*map(cited_in, pages))
    assert cited == set(entries()), (sorted(cited - set(entries())), sorted(set(entries()) - cited))


def test_the_references_page_is_in_the_table_of_contents():
    assert "{bibliography}" in (REPO_ROOT / "book" / "references.md").read_text()
    assert "file: book/references" in (REPO_ROOT / "_toc.yml").read_text()
