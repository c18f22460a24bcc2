"""Run binhyen's servers as local processes on loopback (no Docker needed)."""
