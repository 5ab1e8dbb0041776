"""Standard language-model evaluations on local files (the optional `[lm]` extra)."""
