"""Adapters: the gRPC servicer, event handlers and background workers."""
