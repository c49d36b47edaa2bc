"""xqglib: cross-lingual dense retrieval with query-augmented passage representations (xQG).

One module per pipeline stage: :mod:`data`, :mod:`models`, :mod:`generation`,
:mod:`retrieval_training`, :mod:`encoding`, :mod:`augmentation`, :mod:`search`, :mod:`metrics`,
:mod:`reporting`; :mod:`config` holds the profiles, :mod:`pipeline` wires the stages to a run
directory, :mod:`runner` executes the notebooks and builds the book, :mod:`cli` is the command line.
"""

__version__ = "0.1.0"
