"""Reusable widgets, each with its own DEFAULT_CSS: progress steps, filterable resource tables, the
banner, key/value panels."""
