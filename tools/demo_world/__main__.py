"""`python -m tools.demo_world`: write the demo world (`dong-hoi.DEMO.json`), deterministically.

Figures follow the model city (Đồng Hới police's Zalo network since 2021): 163 groups,
~15,500 members, 39,000 households in 15 units, ~2,300 OA followers. How they split between
the units is invented (roughly by size: the central wards larger, the communes smaller).
"""

import json
import random

from shared.places import DEFAULT_UNITS_FILE
from tools.demo_world import WORLD_FILE, group_id, officer_id

HOUSEHOLDS_TOTAL = 39_000
GROUPS_TOTAL = 163
MEMBERS_TOTAL = 15_500
FOLLOWERS = 2_300
# Relative size of each unit (invented): households, groups and members follow it.
WEIGHTS = {
    "bac-ly": 10,
    "bac-nghia": 6,
    "dong-hai": 9,
    "dong-phu": 10,
    "dong-son": 7,
    "duc-ninh-dong": 5,
    "hai-thanh": 8,
    "nam-ly": 9,
    "phu-hai": 4,
    "bao-ninh": 6,
    "duc-ninh": 5,
    "loc-ninh": 7,
    "nghia-ninh": 4,
    "quang-phu": 4,
    "thuan-duc": 4,
}
FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Phan", "Đặng", "Bùi", "Đỗ")
GIVEN_NAMES = ("Văn Hùng", "Đức Minh", "Quang Huy", "Thị Hoa", "Văn Nam", "Ngọc Sơn", "Văn Tài")


def split(total: int, weights: list[int], floor: int = 1) -> list[int]:
    """`total` split by `weights` (largest remainders), each part at least `floor`."""
    whole = sum(weights)
    parts = [max(floor, total * w // whole) for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def build() -> dict[str, object]:
    rng = random.Random(2021)
    reference = json.loads(DEFAULT_UNITS_FILE.read_text(encoding="utf-8"))
    slugs = [u["slug"] for u in reference["units"]]
    weights = [WEIGHTS[s] for s in slugs]
    households = split(HOUSEHOLDS_TOTAL, weights)
    group_counts = split(GROUPS_TOTAL, weights)
    member_counts = split(MEMBERS_TOTAL, weights)
    units = [{**u, "households": h} for u, h in zip(reference["units"], households, strict=True)]
    officers: list[dict[str, str]] = []
    groups: list[dict[str, object]] = []
    first_member = 0
    for n, unit in enumerate(units):
        officer = {
            "id": officer_id(n),
            "name": f"{rng.choice(FAMILY_NAMES)} {rng.choice(GIVEN_NAMES)}",
            "ward": unit["slug"],
        }
        officers.append(officer)
        hamlet_word = "Tổ dân phố" if unit["kind"] == "phường" else "Thôn"
        count = group_counts[n]
        group_weights = [rng.randint(6, 14) for _ in range(count)]
        members = split(member_counts[n], group_weights, floor=20)
        # Groups reach ~90% of the unit's households, in proportion to their members.
        covered = split(int(unit["households"] * 0.9), group_weights, floor=10)
        for k in range(count):
            hamlet = f"{hamlet_word} {k + 1}"
            # The last group of each commune is the officer's personal group (`manual`).
            manual = unit["kind"] == "xã" and k == count - 1
            groups.append(
                {
                    "id": group_id(len(groups)),
                    "name": f"An ninh trật tự {hamlet} {unit['kind']} {unit['name']}",
                    "ward": unit["slug"],
                    "hamlet": hamlet,
                    "member_count": members[k],
                    "households": covered[k],
                    "channel": "manual" if manual else "oa",
                    "officer": officer["id"],
                    "first_member": first_member,
                }
            )
            first_member += members[k]
    return {
        "demo": True,
        "notice": "DEMO DATA - NOT REAL. Households, groups, members, officers and followers are"
        " invented (shaped like the model city); an operator replaces this file.",
        "city": reference["city"],
        "province": reference["province"],
        "as_of": reference["as_of"],
        "slug_rule": reference["slug_rule"],
        "oa": {"id": "388613280878808645", "name": "Công an thành phố Đồng Hới (DEMO)"},
        "units": units,
        "boundary_change": reference["boundary_change"],
        "officers": officers,
        "groups": groups,
        "residents": first_member,
        "followers": FOLLOWERS,
    }


def main() -> None:
    world = build()
    WORLD_FILE.write_text(json.dumps(world, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    groups = world["groups"]
    assert isinstance(groups, list)
    print(f"{WORLD_FILE}: {len(groups)} groups, {world['residents']} residents")


if __name__ == "__main__":
    main()
