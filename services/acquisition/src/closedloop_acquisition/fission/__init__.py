"""Fission (裂变) campaigns: each participant's own QR code, and the new subscribers it brings."""
