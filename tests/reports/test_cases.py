from datetime import UTC, datetime

import pytest

from services.reports.cases import (
    CaseError,
    CaseMessage,
    case_id_for,
    check_reveal,
    check_transition,
    reference_code,
)
from shared.events.tips import CaseStatus, Outcome
from shared.text import mask_phones
from tests.reports.builders import make_case

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


class TestTransitions:
    @pytest.mark.parametrize(
        ("start", "target"),
        [
            (CaseStatus.NEW, CaseStatus.ASSIGNED),
            (CaseStatus.ASSIGNED, CaseStatus.VERIFYING),
            (CaseStatus.NEW, CaseStatus.REJECTED),
        ],
    )
    def test_legal_moves_pass(self, start: CaseStatus, target: CaseStatus) -> None:
        check_transition(make_case(start), target, None, None)

    @pytest.mark.parametrize(
        ("start", "target"),
        [
            (CaseStatus.NEW, CaseStatus.RESOLVED),
            (CaseStatus.RESOLVED, CaseStatus.VERIFYING),
            (CaseStatus.REJECTED, CaseStatus.NEW),
            (CaseStatus.VERIFYING, CaseStatus.NEW),
        ],
    )
    def test_illegal_moves_are_refused(self, start: CaseStatus, target: CaseStatus) -> None:
        with pytest.raises(CaseError, match="Không thể chuyển") as refused:
            check_transition(make_case(start), target, Outcome.REFERRED, None)
        assert refused.value.status_code == 409

    def test_resolution_needs_an_outcome(self) -> None:
        with pytest.raises(CaseError) as refused:
            check_transition(make_case(CaseStatus.VERIFYING), CaseStatus.RESOLVED, None, None)
        assert refused.value.status_code == 422
        check_transition(
            make_case(CaseStatus.VERIFYING), CaseStatus.RESOLVED, Outcome.FALSE_REPORT, None
        )

    def test_merge_needs_another_case(self) -> None:
        with pytest.raises(CaseError):
            check_transition(make_case(), CaseStatus.DUPLICATE, None, None)
        with pytest.raises(CaseError):
            check_transition(make_case(), CaseStatus.DUPLICATE, None, "c1")
        check_transition(make_case(), CaseStatus.DUPLICATE, None, "c2")


class TestIdentifiers:
    def test_case_id_is_deterministic_per_event(self) -> None:
        assert case_id_for("e1") == case_id_for("e1") != case_id_for("e2")

    def test_reference_code_is_short_and_stable(self) -> None:
        ref = reference_code("c1", "BY")
        assert ref == reference_code("c1", "BY")
        assert ref.startswith("BY-")
        assert len(ref) == 9


class TestNarrative:
    @pytest.mark.parametrize("phone", ["0912345678", "0912 345 678", "+84 912.345.678"])
    def test_phone_numbers_are_masked(self, phone: str) -> None:
        assert phone not in mask_phones(f"gọi cho tôi {phone} nhé")

    def test_other_numbers_stay(self) -> None:
        assert mask_phones("tổ 5, nhà số 12, 2 người") == "tổ 5, nhà số 12, 2 người"

    def test_case_reads_all_its_messages(self) -> None:
        messages = [
            CaseMessage(event_id="e1", at=NOW, text="trộm xe"),
            CaseMessage(event_id="e2", at=NOW, photos=("u",)),
            CaseMessage(event_id="e3", at=NOW, latitude=17.4, longitude=106.6),
        ]
        case = make_case(messages=messages)
        assert (case.text, case.photos, case.location) == ("trộm xe", 1, (17.4, 106.6))


class TestReveal:
    """Finding 9: the pure check behind POST /tipsters/{p}/reveal."""

    def test_only_a_case_of_that_tipster_justifies_a_reveal(self) -> None:
        case = make_case()
        assert check_reveal(case, case.tipster) is case
        with pytest.raises(CaseError) as missing:
            check_reveal(None, case.tipster)
        assert missing.value.status_code == 404
        with pytest.raises(CaseError) as other:
            check_reveal(case, "p-someone-else")
        assert other.value.status_code == 422
