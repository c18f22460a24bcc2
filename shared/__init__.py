"""binhyen's contracts: event schemas, subjects and streams, settings, logging, health, Zalo."""
