"""binhyen services: ingest, broadcast, reports, analytics; each a package run as `python -m`."""
