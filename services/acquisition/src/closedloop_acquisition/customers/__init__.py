"""The people touches and leads belong to: resolved through identity, followed on merge/forget."""
