"""Batch inference: score a table with a registered model into an inference table."""
