"""Campaigns, channels and landing pages: where traffic comes from and what it lands on."""
