"""A Zalo webhook simulator: realistic, correctly signed events of every documented kind."""
