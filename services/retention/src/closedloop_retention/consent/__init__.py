"""Consent and opt-outs: what every send checks at send time."""
