"""Evaluation: measures (the official scorers' semantics, EM/F1), significance tests, generated
query quality, and each research question's per-question outcome tables."""
