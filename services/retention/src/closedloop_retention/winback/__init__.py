"""Win-back offers: the coupon, the message to the customer and the rep's task (via an event)."""
