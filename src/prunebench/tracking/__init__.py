"""Copies of the results for the tools researchers already use: MLflow and TensorBoard.

Only the driver logs (never a Ray worker), from a background thread, after each step (and each
evaluation of `eval:`) has landed in results.sqlite; the database stays the record and a
tracker is a copy of it. Light on purpose: config imports `spec`; the backends import mlflow /
tensorboard only when opened.
"""
