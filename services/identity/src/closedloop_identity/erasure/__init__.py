"""Forgetting a customer (the right to be forgotten)."""
