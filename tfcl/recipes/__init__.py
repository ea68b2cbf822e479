"""Recipes: how each kind of method is built, fed and trained (:class:`~tfcl.recipes.base.Recipe`); the methods
themselves, by name, are the entries of :mod:`tfcl.registry`."""
