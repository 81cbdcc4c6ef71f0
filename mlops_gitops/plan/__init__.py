"""Diff desired vs actual state into an ordered, serialisable plan."""
