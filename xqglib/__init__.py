"""xqglib: cross-lingual dense retrieval with query-augmented passage representations (xQG).

One subpackage per concern: :mod:`~xqglib.config` (settings,
languages, profiles), :mod:`~xqglib.core` (run directory, formats, timing, reuse),
:mod:`~xqglib.models`, :mod:`~xqglib.method` (the generator, encoder, augmentation, search,
reader), :mod:`~xqglib.data` (the benchmarks), :mod:`~xqglib.evaluation` (per-question outcomes,
significance), :mod:`~xqglib.study` (experiments, analysis, tables, figures, findings, cost) and
:mod:`~xqglib.pipeline` (the stage table, the stage functions, the runner). :mod:`~xqglib.cli`
is the command line.
"""

import warnings

__version__ = "0.1.0"

# transformers imports tqdm.auto, which warns in every notebook that ipywidgets is absent; the
# library reports progress itself (xqglib.core.progress), so the widget is not needed
warnings.filterwarnings("ignore", message="IProgress not found")
