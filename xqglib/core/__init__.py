"""What every layer needs: the run directory, file formats, paths, user errors, progress lines,
the machine's description, timing records, reuse records and work split across processes."""
