"""Recipes: a method's model, views and training defaults, by name (used by the CLI and the benchmarks)."""
