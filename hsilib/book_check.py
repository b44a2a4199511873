"""Open every page of the built book in headless Chromium and check it.

A page fails on a console error or an uncaught exception, an image that does
not load, an internal link to a missing page or anchor, or a table wider than
the page's text that no container scrolls. A full-page screenshot of each
page is saved, at the page's own path, under the screenshot folder.

The pages are served from a loopback HTTP server, as a reader's browser would
get them; requests that leave the machine (MathJax and fonts from a CDN) are
blocked and counted, not checked. The browser is the system's Chromium
(Debian: ``apt-get install chromium``; ``$CHROMIUM`` names another), driven
by Playwright; no browser is downloaded.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

SKIPPED_FOLDERS = {"_static", "_sources", "_images", "_sphinx_design_static"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
VIEWPORT = {"width": 1280, "height": 900}
# A page that only sends the reader on (Jupyter Book's index.html).
REDIRECT = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.I)

# Images still loading, then those that failed; tables that overflow the
# article with no scrolling container around them.
_IMAGES_JS = """async () => {
  const images = [...document.images];
  images.forEach(i => { i.loading = "eager"; });
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return {count: images.length,
          broken: images.filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute("src"))};
}"""
_TABLES_JS = """() => {
  const wide = [];
  for (const table of document.querySelectorAll("table")) {
    const box = table.getBoundingClientRect();
    if (box.width === 0) continue;  // hidden (a collapsed solution, a closed dropdown)
    const limit = (table.closest("article") || document.body).getBoundingClientRect().right;
    let scrolls = false;
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      if (["auto", "scroll"].includes(getComputedStyle(el).overflowX)) { scrolls = true; break; }
    }
    if (!scrolls && box.right > limit + 1) wide.push(Math.round(box.width) + " px");
  }
  return wide;
}"""


def find_chromium() -> str | None:
    """The system's Chromium: ``$CHROMIUM``, else the first of BROWSERS on the PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def pages(root: Path) -> list[Path]:
    """Every HTML page of a built book, relative to its root."""
    return sorted(p.relative_to(root) for p in root.rglob("*.html")
                  if not SKIPPED_FOLDERS & set(p.relative_to(root).parts[:-1]))


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


@functools.lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset[str]:
    """The ids (and names) a page defines."""
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def link_problem(root: Path, base: str, href: str) -> str | None:
    """Why a resolved internal link ``href`` (under ``base``) does not
    resolve in the book at ``root``, or None where it does."""
    parts = urlsplit(href)
    target = root / unquote(parts.path[len(urlsplit(base).path):])
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"link to a missing file: {href}"
    if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors(target):
        return f"link to a missing anchor: {href}"
    return None


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    images: int = 0
    links: int = 0
    blocked: int = 0
    screenshot: Path | None = None
    size: tuple[int, int] = (0, 0)
    redirect: str | None = None


def _serve(root: Path) -> http.server.ThreadingHTTPServer:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_book(root: Path, screenshots: Path) -> list[PageReport]:
    """Check every page of the book built at ``root`` (``_build/html``);
    screenshots go to ``screenshots``."""
    from playwright.sync_api import sync_playwright  # the 'dev' extra

    root, screenshots = Path(root).resolve(), Path(screenshots)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"no built book at {root}: build it first (make book)")
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: install it (apt-get install chromium) or set $CHROMIUM")
    server = _serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    reports = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            context = browser.new_context(viewport=VIEWPORT)
            for relative in pages(root):
                reports.append(_check_page(context, root, base, relative.as_posix(), screenshots))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return reports


def _check_page(context, root: Path, base: str, relative: str, screenshots: Path) -> PageReport:
    report = PageReport(relative)
    redirect = REDIRECT.search((root / relative).read_text(errors="replace"))
    if redirect:  # checked as a link; its target is a page of its own
        report.redirect, report.links = redirect.group(1), 1
        problem = link_problem(root, base, urljoin(base + relative, redirect.group(1)))
        report.problems += [problem] if problem else []
        return report
    page = context.new_page()

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            report.blocked += 1
            r.abort()

    def console(message):
        if message.type == "error" and message.location.get("url", "").startswith(base):
            report.problems.append(f"console error: {message.text}")

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda error: report.problems.append(f"uncaught exception: {error}"))
    page.on("response", lambda r: r.url.startswith(base) and r.status >= 400
            and report.problems.append(f"HTTP {r.status}: {r.url[len(base):]}"))
    page.goto(base + relative, wait_until="load")
    images = page.evaluate(_IMAGES_JS)
    report.images = images["count"]
    report.problems += [f"image not loaded: {src}" for src in images["broken"]]
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    internal = sorted({h for h in hrefs if h.startswith(base)})
    report.links = len(internal)
    report.problems += [p for p in (link_problem(root, base, h) for h in internal) if p]
    report.problems += [f"table overflows the page: {w} wide" for w in page.evaluate(_TABLES_JS)]
    report.screenshot = (screenshots / relative).with_suffix(".png")
    report.screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(report.screenshot), full_page=True)
    report.size = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    page.close()
    return report


def summary(reports: list[PageReport]) -> str:
    """One line a page (images, internal links, screenshot size), then each problem."""
    lines = [f"{'page':34} {'images':>6} {'links':>6} {'screenshot':>12} {'KB':>6}  problems"]
    for r in reports:
        kb = r.screenshot.stat().st_size / 1024 if r.screenshot and r.screenshot.exists() else 0
        shot = f"-> {r.redirect}" if r.redirect else f"{r.size[0]}x{r.size[1]}"
        lines.append(f"{r.page:34} {r.images:6d} {r.links:6d} {shot:>12} {kb:6.0f}  {len(r.problems) or '-'}")
        lines += [f"    {p}" for p in r.problems]
    blocked = sum(r.blocked for r in reports)
    bad = sum(bool(r.problems) for r in reports)
    lines.append(f"{len(reports)} pages, {bad} with problems; {blocked} requests off this machine blocked (not checked)")
    return "\n".join(lines)
