"""Broadcast's sender: the delivery state machine (`decisions`), the worker that performs it
(`worker`), and worker-only replicas: `python -m services.broadcast.sender`."""
