"""xqglib: cross-lingual dense retrieval with query-augmented passage representations (xQG).

The pipeline's stages are declared once in :mod:`stages`; :mod:`pipeline` holds the functions
their notebooks call, :mod:`runner` runs the notebooks and builds the book, :mod:`cli` is the
command line. Settings: :mod:`settings` (one dataclass per concern, checked) and :mod:`profiles`.
The method, one idea a module: :mod:`data`, :mod:`model_builds` / :mod:`models`,
:mod:`generation`, :mod:`retrieval_training`, :mod:`encoding`, :mod:`augmentation`,
:mod:`search`. Results: :mod:`experiments` declares the conditions, :mod:`evaluation` scores them
into one tidy table, :mod:`analysis` / :mod:`significance` / :mod:`reporting` turn it into the
book's tables and figures.
"""

import warnings

__version__ = "0.1.0"

# transformers imports tqdm.auto, which warns in every notebook that ipywidgets is absent; the
# library reports progress itself (xqglib.core.progress), so the widget is not needed
warnings.filterwarnings("ignore", message="IProgress not found")
