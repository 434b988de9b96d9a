"""Benchmarks of indexing, answering, memory and start-up against a LangChain baseline (issue 7)."""
