"""Running: the stage table, the runner (papermill, the book), what every stage does (common), the
stage functions of each research question (rq1, rq2, rq3) and several processes (distributed)."""
