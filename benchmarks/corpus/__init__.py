"""A labelled temperature corpus, generated from fixed seeds (see README.md)."""
