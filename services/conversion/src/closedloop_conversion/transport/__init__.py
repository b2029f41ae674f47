"""Transports of the conversion service: gRPC, HTTP (WeCom callbacks, chat archive), events."""
