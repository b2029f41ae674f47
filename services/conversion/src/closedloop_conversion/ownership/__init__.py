"""Ownership: which rep holds the WeCom friendship with which customer, and its transfers."""
