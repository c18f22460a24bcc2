"""Golden samples: the exact bytes producers put on NATS, one file per message shape.

Tests that drive a producer's real publishing path on a real server (the whole-system test,
and the ingest, reports and broadcast tests for the rarer shapes) hand what they read from the
stream to `check_golden`. The message must have the golden file's shape (every key, at every
depth, with the same JSON types where both are set); a new shape has no golden file yet. Both
fail the test, until the golden files are rewritten on purpose:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/system tests/contracts ...

`test_consumers.py` then decodes every golden file with every consumer's real decoder.

File names: `<subject>` (its tokens as published, ward and priority tokens included), then
`--<variant>` when one subject carries several shapes (the Zalo event name, the tip change).
"""

import json
import os
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def golden_name(subject: str, data: bytes) -> str:
    """The file name of a message's shape: its subject family and, where a subject carries
    several shapes, the variant."""
    body = json.loads(data)
    family = ".".join(subject.split(".")[:2])
    if family == "zalo.event":
        return f"{subject}--{body['event_name']}"
    if family == "tips.triaged":
        return f"tips.triaged.{{ward}}.{{priority}}--{body['kind']}"
    if family == "tips.updated":
        return f"tips.updated.{{ward}}--{body['change']}"
    if family == "tips.escalated":
        return "tips.escalated.{ward}"
    return subject


def shape(value: Any) -> Any:
    """Keys at every depth and JSON types; `None` stands for a null (compatible with any)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None if value is None else type(value).__name__


def differences(golden: Any, found: Any, path: str = "") -> list[str]:
    if golden is None or found is None:
        return []
    if isinstance(golden, dict) and isinstance(found, dict):
        problems = [f"{path}.{k}: missing" for k in golden.keys() - found.keys()]
        problems += [f"{path}.{k}: new" for k in found.keys() - golden.keys()]
        for key in golden.keys() & found.keys():
            problems += differences(golden[key], found[key], f"{path}.{key}")
        return problems
    if isinstance(golden, list) and isinstance(found, list):
        if golden and found:
            return differences(golden[0], found[0], f"{path}[0]")
        return []
    return [] if golden == found else [f"{path}: {golden} -> {found}"]


def check_golden(subject: str, data: bytes) -> str:
    """Assert that `data`, published on `subject`, has its golden file's shape (or write the
    file when UPDATE_GOLDEN=1). Returns the golden file's name."""
    name = golden_name(subject, data)
    path = GOLDEN_DIR / f"{name}.json"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_bytes(data)
        return name
    assert path.exists(), f"{subject}: a new message shape ({name}); no golden file yet"
    problems = differences(shape(json.loads(path.read_bytes())), shape(json.loads(data)))
    assert not problems, f"{subject} differs from {path.name}: {problems}"
    return name
