"""Broadcasts (group push): planning recipients under caps, consent and quiet hours; pacing."""
