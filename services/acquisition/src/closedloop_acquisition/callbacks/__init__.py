"""The official account's server callback: messages stored as received, then turned into touches
and interactions by a worker."""
