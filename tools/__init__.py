"""Local tools: the webhook simulator, the fake Zalo server, the local process stack."""
