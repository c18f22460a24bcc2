from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.broadcast.domain import (
    NoticeDraft,
    Targets,
    is_posted_confirmation,
    quiet_hours_end,
    release_time,
)
from services.broadcast.groups import WARD_SLUGS
from shared.verification import find_verification_code, new_verification_code
from tests.broadcast.builders import notice_body

VN = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = (time(22, 0), time(6, 0))


class TestQuietHours:
    def test_late_evening_waits_until_six(self) -> None:
        now = datetime(2026, 11, 28, 23, 30, tzinfo=VN)
        assert quiet_hours_end(now, *QUIET, VN) == datetime(2026, 11, 29, 6, 0, tzinfo=VN)

    def test_early_morning_waits_until_six_same_day(self) -> None:
        now = datetime(2026, 11, 29, 5, 59, tzinfo=VN)
        assert quiet_hours_end(now, *QUIET, VN) == datetime(2026, 11, 29, 6, 0, tzinfo=VN)

    def test_daytime_is_not_quiet(self) -> None:
        assert quiet_hours_end(datetime(2026, 11, 29, 6, 0, tzinfo=VN), *QUIET, VN) is None

    def test_urgent_notice_is_not_held(self) -> None:
        now = datetime(2026, 11, 28, 23, 0, tzinfo=VN).astimezone(UTC)
        urgent = NoticeDraft.model_validate(notice_body(urgency="Immediate"))
        normal = NoticeDraft.model_validate(notice_body())
        assert release_time(urgent, now, QUIET, VN) == now
        assert release_time(normal, now, QUIET, VN) == datetime(2026, 11, 29, 6, 0, tzinfo=VN)


class TestDraft:
    def test_body_limit_counts_nfc_characters(self) -> None:
        decomposed = "e\u0301" * 2000  # 4,000 code points in NFD, 2,000 in NFC
        draft = NoticeDraft.model_validate(notice_body(body=decomposed))
        assert len(draft.body) == 2000
        with pytest.raises(ValidationError, match="2000"):
            NoticeDraft.model_validate(notice_body(body="é" * 2001))

    def test_needs_a_target(self) -> None:
        with pytest.raises(ValidationError, match="đối tượng"):
            NoticeDraft.model_validate(notice_body(targets={}))

    def test_every_ward_counts_as_all(self) -> None:
        assert Targets(wards=sorted(WARD_SLUGS)).reaches_every_ward(WARD_SLUGS)
        assert not Targets(wards=["dong-hai"]).reaches_every_ward(WARD_SLUGS)
        assert Targets(all_groups=True).reaches_every_ward(WARD_SLUGS)

    def test_rejects_naive_schedule(self) -> None:
        with pytest.raises(ValidationError, match="múi giờ"):
            NoticeDraft.model_validate(notice_body(scheduled_at="2026-12-01T08:00:00"))


class TestCodes:
    def test_code_found_in_loose_typing(self) -> None:
        code = new_verification_code("CA")
        loose = code.lower().replace("-", " ")
        assert find_verification_code(f"mã {loose} có thật không?", "CA") == code

    def test_confirmation_with_or_without_diacritics(self) -> None:
        assert is_posted_confirmation("Đã đăng CA-ABCDEF")
        assert is_posted_confirmation("da dang")
        assert not is_posted_confirmation("chưa đăng")
