"""Touches: every meeting of a person and a channel (scan, subscribe, visit, friend add...)."""
