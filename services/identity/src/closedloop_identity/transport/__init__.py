"""Transport adapters: translate gRPC and events to and from the domain, nothing more."""
