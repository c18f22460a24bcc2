"""The demo world: one DEMO seed of the model city that every part of `make run` shares.

`dong-hoi.DEMO.json` (written by `python -m tools.demo_world`, committed) is shaped like the
real city: the 15 former units with households adding up to 39,000 and the 3 wards since
2025-07-01, 163 Zalo groups with wards, hamlets, member counts (~15,500 members) and households,
the OA's ~2,300 followers. It is a unit file the gazetteer reads (`PLACES_UNITS_FILE`, so
analytics' households come from it), the fake Zalo serves its groups and users
(`FAKE_WORLD_FILE`), broadcast's registry is imported from it, and the simulator speaks from
its groups and residents. All of it is invented: DEMO DATA, NOT REAL.

Residents are numbered; their Zalo ids are derived (`resident_id`), so the file lists counts and
ranges instead of 15,500 ids.
"""

import json
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

WORLD_FILE = Path(__file__).resolve().parent / "dong-hoi.DEMO.json"
_RESIDENT_BASE = 7_300_000_000_000_000_000
_OFFICER_BASE = 7_400_000_000_000_000_000
_GROUP_BASE = 6_100_000_000_000_000_000


def resident_id(index: int) -> str:
    """The Zalo user id of resident `index` (numeric strings beyond 2^53, like Zalo's)."""
    return str(_RESIDENT_BASE + index * 7919)


def officer_id(index: int) -> str:
    return str(_OFFICER_BASE + index * 104_729)


def group_id(index: int) -> str:
    return str(_GROUP_BASE + index * 15_485_863)


class Unit(BaseModel):
    model_config = ConfigDict(frozen=True)

    slug: str
    name: str
    kind: str
    households: int | None = None


class Officer(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    ward: str


class WorldGroup(BaseModel):
    """A Zalo group of the city. `oa` groups are owned by the OA (the API posts there);
    `manual` ones are personal groups of the ward officer, who forwards notices by hand."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    ward: str
    hamlet: str
    member_count: int
    households: int
    channel: Literal["oa", "manual"]
    officer: str  # the officer's Zalo id
    first_member: int  # members are residents first_member .. first_member + member_count - 1

    def member_ids(self) -> list[str]:
        return [resident_id(self.first_member + n) for n in range(self.member_count)]


class World(BaseModel):
    model_config = ConfigDict(frozen=True)

    demo: bool
    notice: str
    city: str
    province: str
    as_of: str
    slug_rule: str
    oa: dict[str, str]
    units: tuple[Unit, ...]
    boundary_change: dict[str, object]
    officers: tuple[Officer, ...]
    groups: tuple[WorldGroup, ...]
    residents: int  # every resident is a member of exactly one group
    followers: int  # of them, the OA's followers (spread evenly over the residents)

    @classmethod
    def load(cls, path: Path = WORLD_FILE) -> "World":
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    @cached_property
    def follower_indexes(self) -> list[int]:
        step = self.residents / self.followers
        return [int(k * step) for k in range(self.followers)]

    def follower_ids(self) -> Iterator[str]:
        return (resident_id(i) for i in self.follower_indexes)

    def unit_name(self, slug: str) -> str:
        unit = next(u for u in self.units if u.slug == slug)
        return f"{unit.kind} {unit.name}"

    def registry_csv(self) -> str:
        """The groups as broadcast's `POST /groups/import` takes them."""
        officers = {o.id: o for o in self.officers}
        lines = [
            "group_id,name,ward,hamlet,member_count,households,officer_id,officer_name,"
            "channel,active,is_test"
        ]
        for g in self.groups:
            officer = officers[g.officer]
            lines.append(
                f"{g.id},{g.name},{g.ward},{g.hamlet},{g.member_count},{g.households},"
                f"{officer.id},{officer.name},{g.channel},1,0"
            )
        return "\n".join(lines) + "\n"

    def group_wards(self) -> dict[str, str]:
        """Group id → ward, as reports' `GROUP_WARDS` takes it."""
        return {g.id: g.ward for g in self.groups}
