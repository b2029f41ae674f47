"""Which claims prove one person, per tenant."""
