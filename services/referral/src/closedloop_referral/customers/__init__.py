"""Identity's customer events applied across every concept of the service."""
