"""A fake Zalo OA API + OAuth server (and webhook emitter) for tests and the local demo."""
