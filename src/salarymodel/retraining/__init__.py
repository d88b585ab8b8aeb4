"""Retraining on new data: intake, checks, and the retrain job."""
