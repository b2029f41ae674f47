"""Touches and leads: every meeting on a channel, and the contact details it leaves."""
