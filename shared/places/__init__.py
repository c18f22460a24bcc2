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
# The reference unit file lives in `../shared/data` beside the repository.
DEFAULT_UNITS_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "wards-dong-hoi.json"
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
