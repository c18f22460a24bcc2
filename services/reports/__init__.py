"""Reports: triage citizens' tips and stream them to dispatchers."""
