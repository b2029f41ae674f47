"""Segments: a small filter language over the activity model, compiled to one SQL query."""
