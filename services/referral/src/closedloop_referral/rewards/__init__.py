"""Rewards of referrals: caps, the hold (refund window), grants and revocations."""
