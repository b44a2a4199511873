"""Two fixes to the pages Jupyter Book 1.x writes, each a console error on
every page without them (found by ``make check-book``):

* sphinx-thebe adds its inline configuration script twice, so the page
  declares ``const THEBE_JS_URL`` twice (an uncaught SyntaxError): each
  script is kept once;
* pydata-sphinx-theme's colour mode is "" unless ``default_mode`` is set
  ("Got invalid theme mode"): it is "auto", the reader's system setting.
"""


def _fix_page(app, pagename, templatename, context, doctree):
    context["default_mode"] = context.get("default_mode") or "auto"
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    # Late (default 500), after every extension has added its scripts.
    app.connect("html-page-context", _fix_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
