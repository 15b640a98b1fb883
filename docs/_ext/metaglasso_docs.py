"""Sphinx helpers of the metaglasso documentation.

* ``cli-help`` — a directive that prints ``metaglasso [SUBCOMMAND] --help`` as a literal block, from
  the parser the command itself uses, so the page cannot drift from the command line.
* Titles for the result files of ``metaglasso reproduce --out docs/results/…``: the command writes
  tables without a title (or headed at level 3), since they are shown inside
  ``docs/results/README.md`` on GitHub; the site gives each page a title when it reads it, and
  leaves the files as the command wrote them.
* A check that the API reference lists every name of every public module's ``__all__``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

logger = logging.getLogger(__name__)

# docname -> title of the result files written by ``metaglasso reproduce --out``.
RESULT_TITLES = {
    "results/table1": "Table 1: Space, Eps, Dist and KLD of MGLASSO, PCA and ICA",
    "results/table2": "Table 2: KL divergence of the fitted Gaussians over M",
    "results/bic": "Tables 3 and 4: BIC over ρ and over M",
    "results/penalties": "Per-dataset penalties: one ρ against the sample-scaled ρ_k",
    "results/joint": "Independent, fused and group penalties on drifting networks",
}

# Public module -> the API page that documents it (docs/api/<page>.rst).
API_PAGES = {
    "metaglasso": "metaglasso",
    "metaglasso.datasets": "datasets",
    "metaglasso.metrics": "metrics",
    "metaglasso.baselines": "baselines",
    "metaglasso.reference": "reference",
    "metaglasso.interpret": "interpret",
    "metaglasso.plotting": "plotting",
    "metaglasso.bio": "bio",
    "metaglasso.enrichment": "enrichment",
    "metaglasso.io": "io",
}
# Names of ``metaglasso.__all__`` that are documented otherwise: the version string (on the
# module's page) and the submodules (their own pages).
NOT_IN_AUTOSUMMARY = {"metaglasso": {"__version__", "baselines", "metrics"}}


class CliHelp(Directive):
    """``.. cli-help:: [subcommand]``: the help text of ``metaglasso [subcommand] --help``."""

    optional_arguments = 1
    has_content = False

    def run(self):
        from metaglasso.__main__ import build_parser

        argv = [*self.arguments, "--help"]
        out = io.StringIO()
        # argparse wraps to the terminal's width; fix it so that the page is the same everywhere.
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"
        try:
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                build_parser().parse_args(argv)
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        text = out.getvalue().rstrip()
        if not text:
            raise self.error(f"metaglasso {' '.join(argv)} printed nothing")
        block = nodes.literal_block(text, text, language="text")
        return [block]


def _title_result_files(app, docname, source):
    title = RESULT_TITLES.get(docname)
    if title is None:
        return
    text = source[0]
    if re.search(r"^### ", text, flags=re.MULTILINE) and not re.search(r"^## ", text, flags=re.MULTILINE):
        text = re.sub(r"^### ", "## ", text, flags=re.MULTILINE)
    source[0] = f"# {title}\n\n{text}"


def _autosummary_names(page: Path) -> set[str]:
    """The names listed in the ``autosummary`` directives of an reST page."""
    names, inside = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
            continue
        if inside:
            stripped = line.strip()
            if not stripped or stripped.startswith(":"):
                continue
            if not line.startswith(" "):
                inside = False
                continue
            names.add(stripped.rsplit(".", 1)[-1])
    return names


def _check_api_reference(app):
    api_dir = Path(app.srcdir) / "api"
    for module_name, page in API_PAGES.items():
        module = importlib.import_module(module_name)
        expected = set(module.__all__) - NOT_IN_AUTOSUMMARY.get(module_name, set())
        missing = sorted(expected - _autosummary_names(api_dir / f"{page}.rst"))
        if missing:
            logger.warning(
                "api/%s.rst does not list %s of %s.__all__", page, ", ".join(missing), module_name,
                type="metaglasso", subtype="api",
            )


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out the set_<method>_request methods that scikit-learn adds to estimators whose methods take
    extra keyword arguments (metadata routing): scikit-learn documents them, and their docstrings refer to
    its own glossary."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.add_directive("cli-help", CliHelp)
    app.connect("autodoc-skip-member", _skip_metadata_requests)
    app.connect("source-read", _title_result_files)
    app.connect("builder-inited", _check_api_reference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
