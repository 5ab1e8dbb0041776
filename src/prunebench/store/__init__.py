"""The results directory: the SQLite database (schema, connection, runs, steps, files, leases,
frames behind the `Store` facade), checkpoints, the one reader, verification."""
