"""Execute a plan through a backend: lock, journal, dependency-ordered actions, provenance."""
