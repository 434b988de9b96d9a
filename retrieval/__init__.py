"""Find the passages that answer a question and compose verified, cited answers."""
