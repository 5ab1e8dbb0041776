"""Pruners: unstructured masks (`unstructured`, `masks`, `params`) or physical channel removal
(`structured`), chosen from a config by `factory.make_pruner`.

This package's import is light: `presets` is read by config validation.
"""
