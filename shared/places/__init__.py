"""Places: the gazetteer of administrative units and Vietnamese name matching."""

from pathlib import Path

from shared.places.gazetteer import (
    SET_AFTER,
    SET_BEFORE,
    UNKNOWN_WARD,
    Gazetteer,
    Place,
    PlaceMatch,
    Unit,
)
from shared.places.text import fold, fold_phrase, slugify, words

DATA_DIR = Path(__file__).resolve().parent / "data"
# The 15 units before 2025-07-01 and the 3 wards after (households unknown: operator data).
DEFAULT_UNITS_FILE = DATA_DIR / "wards-dong-hoi.json"
DEMO_CROSSWALK_FILE = DATA_DIR / "crosswalk-dong-hoi-2025.DEMO.json"
DEMO_PLACES_FILE = DATA_DIR / "places-dong-hoi.DEMO.json"

__all__ = [
    "DEFAULT_UNITS_FILE",
    "DEMO_CROSSWALK_FILE",
    "DEMO_PLACES_FILE",
    "SET_AFTER",
    "SET_BEFORE",
    "UNKNOWN_WARD",
    "Gazetteer",
    "Place",
    "PlaceMatch",
    "Unit",
    "fold",
    "fold_phrase",
    "slugify",
    "words",
]
