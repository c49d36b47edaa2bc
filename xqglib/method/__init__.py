"""The method itself: the query generator (prompts, sampling, joint decoding, training), the dense
encoder and its training, multilingual alignment, xQG augmentation, search and the reader."""
