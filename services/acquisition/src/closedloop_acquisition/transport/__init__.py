"""Adapters between the outside (gRPC, HTTP, NATS, the callback worker) and the domain."""
