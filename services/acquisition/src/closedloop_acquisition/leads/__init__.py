"""Leads: the contact details a touch leaves, tied to one customer per campaign."""
