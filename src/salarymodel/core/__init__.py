"""The estimation core: features, model, ranges, pay (currency, percentile)."""
