"""Lifecycle events as CloudEvents 1.0 documents, and the sinks that deliver them."""
