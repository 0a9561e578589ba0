"""Tests of the corpus loaders (RAVDESS, a generated IEMOCAP miniature) and data-set summaries."""
