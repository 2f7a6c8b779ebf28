"""Recommendation models: matrix building, the models, the ANN index and the registry.

Import the submodules you need (``fastinsight.recsys.registry`` for models by name);
this package imports nothing heavy itself.
"""
