"""The promotion gate: paired intervals and the decision to promote."""
