"""Referrals: attribution of leads to referrers, fraud checks, conversion, review, the ledger."""
