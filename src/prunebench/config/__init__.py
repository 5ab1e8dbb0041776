"""Experiment configuration: schema, identities, YAML and --set loading, sweep grids, schedules (light: no torch)."""
