"""A one-page, self-contained HTML report: figures embedded as PNG data, tables inline."""

from __future__ import annotations

import base64
import html
import os

__all__ = ["write_report"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #666; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 3px; }
dl.info { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; font-size: 0.92em; }
dl.info dt { font-weight: 600; } dl.info dd { margin: 0; }
"""


def _img(path):
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return f"<img alt='{html.escape(os.path.basename(path))}' src='data:image/png;base64,{data}'>"


def write_report(path, *, title, info, sections):
    """Write the report.

    Parameters
    ----------
    path : str
    title : str
    info : list of (label, value) pairs shown at the top
    sections : list of dicts with ``heading`` and any of ``text`` (plain text paragraphs),
        ``figure`` (path of a PNG, embedded), ``html`` (trusted HTML, e.g. a table) and ``files``
        (names of files beside the report, linked)
    """
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>", "<dl class='info'>"]
    for label, value in info:
        parts.append(f"<dt>{html.escape(str(label))}</dt><dd>{html.escape(str(value))}</dd>")
    parts.append("</dl>")
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec['heading'])}</h2>")
        for para in sec.get("text", []):
            parts.append(f"<p>{html.escape(para)}</p>")
        if sec.get("figure") and os.path.exists(sec["figure"]):
            parts.append(_img(sec["figure"]))
        if sec.get("html"):
            parts.append(sec["html"])
        if sec.get("files"):
            links = ", ".join(f"<a href='{html.escape(f)}'><code>{html.escape(f)}</code></a>" for f in sec["files"])
            parts.append(f"<p class='note'>Files: {links}</p>")
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    return path
