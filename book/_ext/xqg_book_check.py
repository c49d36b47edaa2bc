"""Sphinx extension: refuse to build the book without the executed notebooks.

The book renders notebooks that ``python -m xqglib book`` runs and copies into ``book/_executed``;
a plain ``jupyter-book build .`` on a fresh clone would otherwise "succeed" with every result
missing.
"""

from pathlib import Path

from sphinx.errors import ExtensionError


def _check(app):
    executed = Path(app.srcdir) / "book" / "_executed"
    if not any(executed.glob("*.ipynb")):
        raise ExtensionError("the executed notebooks are missing (book/_executed is empty): build the book "
                             "with `make book` or `python -m xqglib book --profile smoke|cpu`, which runs "
                             "the pipeline first")


def setup(app):
    app.connect("builder-inited", _check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
