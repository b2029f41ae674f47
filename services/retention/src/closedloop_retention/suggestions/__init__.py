"""Repurchase and cross-sell: item co-occurrence over paid orders, in SQL."""
