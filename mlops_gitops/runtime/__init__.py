"""The local data plane: the endpoint host, its runners, environments."""
