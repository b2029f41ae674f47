"""The sales pipeline: follow-ups, opportunities, orders and the per-rep reports over them."""
