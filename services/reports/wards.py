"""The ward a text names: the first place the gazetteer finds (the incident's own place comes
first in how residents write), else none."""

from shared.places import Gazetteer, PlaceMatch


def ward_in_text(gazetteer: Gazetteer, text: str) -> PlaceMatch | None:
    places = gazetteer.find(text)
    return places[0] if places else None
