"""The browser app's pieces: inert Markdown, source cards, the sidebar, uploads and reindexing."""
