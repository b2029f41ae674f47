"""The TLSRRR funnel: a read model of every customer's first time at each step."""
