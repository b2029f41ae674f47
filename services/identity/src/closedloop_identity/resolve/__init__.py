"""Resolving claimed identities to one customer: the plan, the direct statements, the use case."""
