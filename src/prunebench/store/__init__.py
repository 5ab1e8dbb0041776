"""The results directory: the SQLite database, checkpoints, the one reader, verification."""
