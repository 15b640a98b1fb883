"""Tables of the interpretation layer: pandas DataFrames when pandas is installed, otherwise dicts
of 1-D NumPy arrays; plus writers (CSV, Markdown, HTML) that accept either form."""

from __future__ import annotations

import csv
import html
import numbers

import numpy as np

__all__ = ["make_table", "pandas_or_none", "table_columns", "write_csv", "markdown_table", "html_table"]


def pandas_or_none():
    """The pandas module, or None when it is not installed."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def _column(values):
    arr = np.asarray(values)
    if arr.dtype.kind in "US":  # keep strings as Python objects, as pandas does
        arr = arr.astype(object)
    return arr


def make_table(columns, index=None, index_name=None):
    """A table from ``columns`` (an ordered mapping name → 1-D values of equal length).

    With pandas: a DataFrame, with ``index`` (named ``index_name``) when given. Without pandas: a
    dict of 1-D NumPy arrays, the index (if any) first under ``index_name``.
    """
    pd = pandas_or_none()
    cols = {name: _column(values) for name, values in columns.items()}
    if pd is not None:
        idx = None if index is None else pd.Index(list(index), name=index_name)
        return pd.DataFrame(cols, index=idx)
    out = {}
    if index is not None:
        out[index_name or "index"] = _column(list(index))
    out.update(cols)
    return out


def table_columns(table):
    """(names, columns) of a DataFrame (index first, when it is named or not a plain range) or of a
    dict of arrays."""
    pd = pandas_or_none()
    if pd is not None and isinstance(table, pd.DataFrame):
        names, cols = [], []
        plain = isinstance(table.index, pd.RangeIndex) and table.index.name is None
        if not plain:
            names.append(table.index.name or "index")
            cols.append(np.asarray(table.index, dtype=object))
        for name in table.columns:
            names.append(str(name))
            cols.append(np.asarray(table[name]))
        return names, cols
    if isinstance(table, dict):
        return [str(k) for k in table], [np.asarray(v) for v in table.values()]
    raise TypeError(f"table must be a pandas DataFrame or a dict of arrays; got {type(table).__name__}")


def _format_cell(value, digits):
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if np.isnan(value):
            return ""
        if digits is None:
            return repr(value)
        if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 10**7):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def write_csv(table, path):
    """Write a table (DataFrame or dict of arrays) to ``path`` as CSV, floats at full precision."""
    names, cols = table_columns(table)
    n = len(cols[0]) if cols else 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for i in range(n):
            writer.writerow([_format_cell(c[i], None) for c in cols])
    return path


def _rows(table, digits, max_rows):
    names, cols = table_columns(table)
    n = len(cols[0]) if cols else 0
    shown = n if max_rows is None else min(n, max_rows)
    rows = [[_format_cell(c[i], digits) for c in cols] for i in range(shown)]
    return names, rows, n - shown


def markdown_table(table, *, digits=4, max_rows=None):
    """A GitHub-flavoured Markdown table of a DataFrame or dict of arrays (no extra dependency)."""
    names, rows, hidden = _rows(table, digits, max_rows)

    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(names), "|" + "|".join("---" for _ in names) + "|"]
    out += [line(r) for r in rows]
    if hidden:
        out.append(f"\n({hidden} more rows)")
    return "\n".join(out)


def html_table(table, *, digits=4, max_rows=None):
    """An HTML table of a DataFrame or dict of arrays."""
    names, rows, hidden = _rows(table, digits, max_rows)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    more = f"<p class='note'>{hidden} more rows not shown.</p>" if hidden else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"
