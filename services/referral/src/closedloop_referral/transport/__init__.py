"""Adapters between the outside (gRPC, public HTTP, events) and the referral domain."""
