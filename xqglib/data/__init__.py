"""Data: the public files and their digests (sources), benchmark B1 and its training data, B3
(XOR-Retrieve), B2 (XQuAD-R) and XQuAD's query-language x passage-language matrix."""
