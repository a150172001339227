"""Data: robust image loading and saving (more data sets arrive with training)."""
