"""Sources of completions: a completions file, or a model (transformers in process, or served)."""
