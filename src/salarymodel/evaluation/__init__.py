"""Honest evaluation: folds, cross-validation, backtest, groups, drift."""
