"""Rep tasks: what a rep should do about a customer, made from other services' events."""
