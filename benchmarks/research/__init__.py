"""Exploration beside the product: recipe ideas, nested recipe selection, a training-step profile.

Run from the repository root as modules (`python -m benchmarks.research.recipe_ideas ...`). They vary the
trainer only through `train_fold_model`'s parameters; the numbers they printed are in benchmarks/RESULTS.md.
"""
