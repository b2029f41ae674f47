"""Loyalty: a points ledger with a balance that never overdraws, tiers and coupons."""
