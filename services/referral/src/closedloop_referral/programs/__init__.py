"""Referral programs, referral codes, shares and share-link visits (no transport here)."""
