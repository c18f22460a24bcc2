"""Ingest: receives the Zalo webhook, verifies it, normalizes events, publishes to JetStream."""
