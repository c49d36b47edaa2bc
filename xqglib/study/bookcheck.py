"""Checks on the built book: no number typed into a page's prose.

Every number a reader sees in the book comes from the run that built it, pasted by glue. A page's
prose may still name constants that are not results: the paper's own recipe and the metric's
definition. :data:`CONSTANT_PHRASES` lists those, each with its reason; any other number in the
prose of a checked page is an error.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Phrases whose numbers are constants of the paper or of the metric, not results of a run.
CONSTANT_PHRASES = (
    "Table 1",                                   # the paper's table
    "2,000 tokens", "5,000 tokens",              # the definition of R@2kt / R@5kt
    "p < 0.05",                                  # the significance level of the marks
    "alpha = 0.01", "alpha 0.01",                # the paper's alpha
    "where the paper fuses 35",                  # the paper's 7 languages x n = 5
    "35 generated queries (7 languages x 5)",
    "alpha x 35 / (languages x n)",
    "(7 languages, 18M English Wikipedia passages)",
    "from n = 4 on",                             # the paper's claim about n
    "n = 1 to",                                  # the sweep's first n
    "alpha 0 is the plain retriever",            # a definition
    "1024 x 1024 products",                      # how the roof is measured (xqglib.study.cost)
    "arXiv 2408.10536",                          # a citation (the hybrid-batch paper)
    "up to 256 tokens",                          # XTREME-R's script's candidate length
    "× 100",                                     # a unit (mAP shown in points)
    "95% paired bootstrap interval",             # the interval's definition
    "95% interval over",                         # the seed sweep's interval (evaluation.significance.seed_interval)
    "80% power",                                 # the power a detectable difference is stated at
    "arXiv 2510.09557",                          # a citation (Doc2Query++)
    "ACL 2020, Table 6",                         # a citation (XLM-R's CC-100 sizes)
)

_NUMBER = re.compile(r"(?<![\w@.\-/])[-+]?\d[\d,]*(?:\.\d+)?(?![\w@])")


def typed_numbers(html: str) -> list[str]:
    """Numbers in the prose of a built page that were not pasted by glue (with some context)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup
    for element in article.select("table, pre, code, .math, .pasted-text, .pasted-inline, div.output, a.internal, "
                                  "div.cell_output, div.cell, .headerlink, script, style"):
        element.decompose()
    found = []
    for block in article.find_all(["p", "li", "dd", "figcaption"]):
        if block.find(["p", "li"]):  # a container: its own paragraphs are checked
            continue
        text = " ".join(block.get_text(" ").split())
        for phrase in CONSTANT_PHRASES:
            text = text.replace(phrase, " ")
        for match in _NUMBER.finditer(text):
            found.append(text[max(0, match.start() - 40): match.end() + 20])
    return found


def check_pages(build: Path, pages: tuple[str, ...] = ("book/results", "book/rq2", "book/rq3", "book/reproducibility")
                ) -> dict[str, list[str]]:
    """``{page: [typed numbers]}`` for the pages that report a run (empty lists: clean)."""
    return {page: typed_numbers((build / f"{page}.html").read_text(encoding="utf-8")) for page in pages}
