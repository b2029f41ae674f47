"""The customer 360: one customer's leads, follow-ups, orders, referral position and timeline."""
