"""Versioned event contracts: every message that crosses a service boundary."""
