"""`make check-book` (hsilib.book_check): pages opened in headless Chromium.

Runs where the system has a Chromium and Playwright is installed (the 'dev'
extra); skipped with the reason elsewhere."""

import base64
import subprocess
from pathlib import Path

import pytest

from hsilib.book_check import find_chromium, pages

pytest.importorskip("playwright.sync_api", reason="playwright comes with the 'dev' extra")
if find_chromium() is None:
    pytest.skip("no Chromium on this machine (make check-book installs it: apt-get install chromium)",
                allow_module_level=True)

from hsilib.book_check import check_book  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/"
                       "eL9GtQAAAABJRU5ErkJggg==")
WIDE = "<table>" + "<tr>" + "".join(f"<td>column{i}</td>" for i in range(200)) + "</tr></table>"


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><body><article>{body}</article></body></html>"


def site(tmp_path: Path, index_body: str) -> Path:
    root = tmp_path / "html"
    (root / "book").mkdir(parents=True)
    (root / "_images").mkdir()
    (root / "_images" / "dot.png").write_bytes(PNG)
    (root / "book" / "chapter.html").write_text(page('<h1 id="results">Results</h1><a href="../index.html">up</a>'))
    (root / "index.html").write_text(page(index_body))
    return root


GOOD = ('<img src="_images/dot.png"><a href="book/chapter.html#results">results</a>'
        f'<div style="overflow-x: auto">{WIDE}</div>')


def test_a_sound_book_passes_with_a_screenshot_of_each_page(tmp_path):
    root = site(tmp_path, GOOD)
    reports = check_book(root, tmp_path / "shots")
    assert [r.page for r in reports] == ["book/chapter.html", "index.html"] == [p.as_posix() for p in pages(root)]
    assert all(not r.problems for r in reports), [r.problems for r in reports]
    index = reports[1]
    assert index.images == 1 and index.links == 1
    for name in ("index.png", "book/chapter.png"):
        assert (tmp_path / "shots" / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("body, problem", [
    ('<img src="_images/missing.png">', "image not loaded: _images/missing.png"),
    ('<a href="book/nowhere.html">x</a>', "link to a missing file"),
    ('<a href="book/chapter.html#no-such-section">x</a>', "link to a missing anchor"),
    ("<script>console.error('boom')</script>", "console error: boom"),
    ("<script>undefinedFunction()</script>", "uncaught exception"),
    (WIDE, "table overflows the page"),
])
def test_each_defect_fails_its_page(tmp_path, body, problem):
    reports = {r.page: r for r in check_book(site(tmp_path, GOOD + body), tmp_path / "shots")}
    assert any(problem in p for p in reports["index.html"].problems), reports["index.html"].problems
    assert not reports["book/chapter.html"].problems


@pytest.mark.parametrize("target, ok", [("book/chapter.html", True), ("book/gone.html", False)])
def test_a_redirecting_page_is_checked_as_a_link(tmp_path, target, ok):
    """Jupyter Book's index.html only sends the reader to the first page."""
    root = site(tmp_path, GOOD)
    (root / "start.html").write_text(f'<meta http-equiv="Refresh" content="0; url={target}" />')
    report = {r.page: r for r in check_book(root, tmp_path / "shots")}["start.html"]
    assert report.redirect == target and not report.screenshot
    assert (not report.problems) == ok, report.problems


def test_no_built_book_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no built book"):
        check_book(tmp_path, tmp_path / "shots")


@pytest.mark.slow
@pytest.mark.skipif(not (REPO_ROOT / "_build" / "html" / "index.html").exists(),
                    reason="no built book here (make book PROFILE=smoke builds one)")
def test_make_check_book_passes_on_the_built_book():
    done = subprocess.run(["make", "-s", "check-book"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "0 with problems" in done.stdout
