"""Customer data keys: the keys that seal personal data in events, destroyed on erasure."""
