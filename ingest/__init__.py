"""Turn a folder of essays into a searchable index: load, clean, chunk, embed, store."""
