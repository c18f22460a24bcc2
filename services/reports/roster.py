"""Who is on duty in a ward right now, from a roster kept in configuration."""

import json
from datetime import datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter


class Shift(BaseModel):
    officer: str
    start: time
    end: time  # a shift that ends before it starts runs past midnight; equal = all day

    def covers(self, moment: time) -> bool:
        if self.start == self.end:
            return True
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


_ROSTER = TypeAdapter(dict[str, list[Shift]])


class Roster:
    def __init__(self, shifts: dict[str, list[Shift]], timezone: str) -> None:
        self.shifts = shifts
        self.zone = ZoneInfo(timezone)

    @classmethod
    def from_json(cls, text: str, timezone: str) -> "Roster":
        return cls(_ROSTER.validate_python(json.loads(text or "{}")), timezone)

    def on_duty(self, ward: str, at: datetime) -> str | None:
        """The first officer whose shift in `ward` covers `at` (local time), if any."""
        local = at.astimezone(self.zone).time()
        for shift in self.shifts.get(ward, []):
            if shift.covers(local):
                return shift.officer
        return None
