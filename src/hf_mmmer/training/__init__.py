"""Training and evaluation: LOSO folds, metrics, artifacts, model export and Hub upload."""
