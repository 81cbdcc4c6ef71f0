"""Backends read actual state and perform one action at a time."""
