"""The MLflow store: versions, the champion alias, model bundles."""
