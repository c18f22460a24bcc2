"""The unit a text names, read the way residents write places (docs/triage-labelling.md §7).

On top of the gazetteer's matches: a name typed with marks that disagree is another word ("hai
thanh niên" is two youths, not Hải Thành); a direction ("chạy về hướng Bảo Ninh") or the
bridge, river or street of a beach's name ("cầu Nhật Lệ") is not the incident's place; a
one-word village counts after "ở", "chợ", "bến" ("chợ Cừa"); a former unit or village beats a
new ward's name; the incident's place beats the writer's home ("tôi ở X"); and a name both
unit sets share ("Đồng Sơn") is the new ward only when the text marks it as such ("Đồng Sơn
mới", "sau sáp nhập").
"""

import functools
from dataclasses import replace

from shared.places import SET_AFTER, Gazetteer, PlaceMatch
from shared.places.text import fold, raw_words, tone_key, words

DIRECTION = frozenset({"huong", "phia"})  # "chạy về hướng X", "ra phía X"
NOT_THE_PLACE = frozenset({"cau", "song", "duong"})  # "cầu Nhật Lệ" is not the beach
BEFORE_ONE_WORD = frozenset({"o", "cho", "ben", "xom", "thon", "tai"})  # "chợ Cừa", "ở Cừa"
NEW_WARD_MARKERS = (("moi",), ("sap", "nhap"), ("quang", "tri"))
HOME = frozenset({"toi", "tui", "em", "minh", "nha", "choa", "tau", "anh", "chi", "e"})
CITY = ["dong", "hoi"]  # the city's name: the new ward only as "phường Đồng Hới"
NOT_A_NAME = (["hai", "thanh", "nien"],)  # "hai thanh niên": two youths, not Hải Thành


def ward_in_text(
    gazetteer: Gazetteer, text: str, matches: list[PlaceMatch] | None = None
) -> PlaceMatch | None:
    """`matches`: `gazetteer.find(text)`, when the caller has it already."""
    typed = raw_words(text)
    folded = [fold(word) for word in typed]
    found = [
        (start, match)
        for match in (gazetteer.find(text) if matches is None else matches)
        if (start := _position(folded, match.term.split())) is not None
        and not _excluded(gazetteer, typed, folded, start, match)
    ]
    found += _one_word_places(gazetteer, typed, folded)
    if not found:
        return None
    former = [(s, m) for s, m in found if gazetteer.units[m.unit].unit_set != SET_AFTER]
    found = former or found
    # "Tôi ở Bắc Lý, đi chợ ở Đức Ninh Đông bị móc túi": the incident's place beats the home.
    elsewhere = [(s, m) for s, m in found if not _is_home(folded, s)]
    start, match = min(elsewhere or found, key=lambda item: item[0])
    return _shared_name(gazetteer, folded, start, match)


def _is_home(folded: list[str], start: int) -> bool:
    """ "tôi ở X", "nhà ở X", "nhà tôi ở phường X" """
    before = folded[max(0, start - 3) : start]
    if before[-1:] == ["phuong"] or before[-1:] == ["xa"]:
        before = folded[max(0, start - 4) : start - 1]
    return len(before) >= 2 and before[-1] == "o" and before[-2] in HOME


def _position(folded: list[str], term: list[str]) -> int | None:
    size = len(term)
    for start in range(len(folded) - size + 1):
        if folded[start : start + size] == term:
            return start
    return None


def _excluded(
    gazetteer: Gazetteer, typed: list[str], folded: list[str], start: int, match: PlaceMatch
) -> bool:
    before = folded[start - 1] if start > 0 else ""
    if before in DIRECTION or (match.via == "place" and before in NOT_THE_PLACE):
        return True
    if match.term.split() == CITY and before != "phuong":
        return True
    if any(folded[start : start + len(phrase)] == phrase for phrase in NOT_A_NAME):
        return True
    name = raw_words(match.name)
    window = typed[start : start + len(name)]
    if [fold(w) for w in name] != [fold(w) for w in window]:
        return False  # matched through a kind word or an alias: nothing typed to compare
    return any(_disagree(word, want) for word, want in zip(window, name, strict=True))


def _disagree(typed: str, name: str) -> bool:
    """Typed with marks, and not the name's marks (tone placement aside)."""
    return typed != fold(typed) and tone_key(typed) != tone_key(name)


def _one_word_places(
    gazetteer: Gazetteer, typed: list[str], folded: list[str]
) -> list[tuple[int, PlaceMatch]]:
    found = []
    for place in gazetteer.places:
        name = _name_words(place.name)
        ward = gazetteer.current(place.unit)
        if len(name) != 1 or ward is None:
            continue
        for i in range(1, len(folded)):
            if folded[i] == name[0] and folded[i - 1] in BEFORE_ONE_WORD:
                if typed[i] != folded[i] and _disagree(typed[i], place.name.lower()):
                    continue
                found.append((i, PlaceMatch(ward, place.unit, place.name, name[0], "place")))
    return found


def _shared_name(
    gazetteer: Gazetteer, folded: list[str], start: int, match: PlaceMatch
) -> PlaceMatch:
    twins = [u for u in gazetteer.units.values() if _folded(u.name) == _folded(match.name)]
    if len(twins) < 2 or match.via == "place":
        return match
    after = folded[start + len(match.term.split()) :][:1]
    marked = after == ["moi"] or any(_contains(folded, m) for m in NEW_WARD_MARKERS[1:])
    wanted = next((u for u in twins if (u.unit_set == SET_AFTER) == marked), None)
    if wanted is None or wanted.slug == match.unit:
        return match
    return replace(match, unit=wanted.slug, ward=gazetteer.current(wanted.slug) or match.ward)


def _contains(folded: list[str], phrase: tuple[str, ...]) -> bool:
    return _position(folded, list(phrase)) is not None


# Names come from the gazetteer (a few hundred): folded once, not once per message.
@functools.lru_cache(maxsize=4096)
def _folded(name: str) -> str:
    return fold(name)


@functools.lru_cache(maxsize=4096)
def _name_words(name: str) -> tuple[str, ...]:
    return tuple(words(name))
