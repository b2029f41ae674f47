"""Customers and the identities that recognise them."""
