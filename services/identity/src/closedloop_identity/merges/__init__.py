"""Merging customers into one, and undoing a merge."""
