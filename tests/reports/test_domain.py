from datetime import UTC, datetime, timedelta

import pytest

from services.reports.cases import Case, CaseMessage
from services.reports.duplicates import Fingerprint, fingerprint, ranked_duplicates
from services.reports.knowledge import KnowledgeBase
from services.reports.reply_texts import received
from services.reports.roster import Roster
from services.reports.settings import ReportsSettings
from services.reports.triage import Triager
from services.reports.vault import TipsterVault
from shared.events.tips import TipCategory, TipKind, TipPriority
from tests.reports.test_cases import NOW, make_case


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager.from_files()


class TestRoster:
    ROSTER = (
        '{"quang-phu": [{"officer": "day", "start": "07:00", "end": "19:00"},'
        ' {"officer": "night", "start": "19:00", "end": "07:00"}]}'
    )

    @pytest.mark.parametrize(("utc_hour", "officer"), [(2, "day"), (13, "night"), (20, "night")])
    def test_shift_in_local_time(self, utc_hour: int, officer: str) -> None:
        roster = Roster.from_json(self.ROSTER, "Asia/Ho_Chi_Minh")
        at = datetime(2026, 11, 29, utc_hour, 30, tzinfo=UTC)
        assert roster.on_duty("quang-phu", at) == officer

    def test_ward_without_roster_has_nobody(self) -> None:
        assert Roster.from_json(self.ROSTER, "UTC").on_duty("bac-ly", NOW) is None


@pytest.fixture(scope="module")
def knowledge() -> KnowledgeBase:
    names = {"quang-phu": "xã Quang Phú", "bac-ly": "phường Bắc Lý"}
    return KnowledgeBase.load(ReportsSettings().knowledge_file, names)


class TestKnowledge:
    def test_procedure_question_is_answered(
        self, knowledge: KnowledgeBase, triager: Triager
    ) -> None:
        answer = knowledge.answer(triager.tokens("lam can cuoc gan chip o dau vay"), [])
        assert answer is not None
        assert answer.entry_id == "can-cuoc-cap-moi"

    def test_phone_question_names_the_ward(
        self, knowledge: KnowledgeBase, triager: Triager
    ) -> None:
        tokens = triager.tokens("Cho hỏi số điện thoại trực ban công an xã Quang Phú")
        answer = knowledge.answer(tokens, ["quang-phu"])
        assert answer is not None
        assert "xã Quang Phú" in answer.text
        assert "DEMO" in answer.text
        assert "phường Bắc Lý" not in answer.text

    def test_unknown_question_has_no_answer(
        self, knowledge: KnowledgeBase, triager: Triager
    ) -> None:
        assert knowledge.answer(triager.tokens("xin phép tổ chức hội chợ"), []) is None


class TestDuplicates:
    def test_same_incident_from_another_tipster(self) -> None:
        original = make_case(
            id="a", category=TipCategory.FIRE, messages=[_msg("Cháy nhà ở chợ, khói đen")]
        )
        new = make_case(
            id="b",
            tipster="p-other",
            category=TipCategory.FIRE,
            messages=[_msg("chay nha gan cho, khoi den lam")],
        )
        [(found, score)] = _rank(new, [original])
        assert found.case_id == "a"
        assert score >= 0.35

    def test_own_old_other_ward_or_unrelated_cases_are_not_duplicates(self) -> None:
        new = make_case(id="n", messages=[_msg("trộm xe máy ở chợ")])
        same_tipster = make_case(id="s", messages=[_msg("trộm xe máy ở chợ")])
        old = make_case(
            id="o",
            tipster="p-y",
            last_message_at=NOW - timedelta(days=1),
            messages=[_msg("trộm xe máy ở chợ")],
        )
        other_ward = make_case(
            id="w", tipster="p-z", ward="bac-ly", messages=[_msg("trộm xe máy ở chợ")]
        )
        unrelated = make_case(id="u", tipster="p-u", messages=[_msg("karaoke hát to quá")])
        assert _rank(new, [same_tipster, old, other_ward, unrelated]) == []

    def test_unknown_ward_is_compared_with_every_ward(self) -> None:
        new = make_case(id="n", ward="unknown", messages=[_msg("trộm xe máy ở chợ")])
        known = make_case(id="k", tipster="p-k", messages=[_msg("trộm xe máy ở chợ")])
        assert [f.case_id for f, _ in _rank(new, [known])] == ["k"]

    def test_fingerprint_round_trips_through_a_document(self) -> None:
        mark = fingerprint(
            make_case(places=["quang-phu"], messages=[_msg("trộm chó")]), frozenset()
        )
        assert Fingerprint.from_document(mark.to_document()) == mark


def _rank(new: Case, others: list[Case]) -> list[tuple[Fingerprint, float]]:
    return ranked_duplicates(
        fingerprint(new, frozenset()),
        [fingerprint(o, frozenset()) for o in others],
        threshold=0.35,
        window=timedelta(hours=2),
    )


class TestVault:
    def test_seal_opens_only_with_the_same_key(self) -> None:
        sealer = TipsterVault("secret-a", "pseudo")
        sealed = sealer.seal("246845883529197922")
        assert "246845883529197922" not in sealed
        assert sealer.open(sealed) == "246845883529197922"
        with pytest.raises(ValueError, match="does not open"):
            TipsterVault("secret-b", "pseudo").open(sealed)

    def test_pseudonym_is_stable_and_keyed(self) -> None:
        assert TipsterVault("s", "k1").pseudonym("u") == TipsterVault("x", "k1").pseudonym("u")
        assert TipsterVault("s", "k1").pseudonym("u") != TipsterVault("s", "k2").pseudonym("u")


class TestReplies:
    def test_urgent_reply_tells_to_call_113(self) -> None:
        text = received(
            TipKind.TIP, TipCategory.VIOLENCE, TipPriority.URGENT, "xã Quang Phú", "BY-X"
        )
        assert "Công an xã Quang Phú" in text
        assert "BY-X" in text
        assert "113" in text

    def test_fire_reply_also_names_114(self) -> None:
        text = received(TipKind.TIP, TipCategory.FIRE, TipPriority.URGENT, None, "BY-X")
        assert "114" in text
        assert "113" in text

    def test_normal_reply_has_no_emergency_advice(self) -> None:
        text = received(TipKind.TIP, TipCategory.THEFT, TipPriority.NORMAL, None, "BY-X")
        assert "113" not in text


def _msg(text: str) -> CaseMessage:
    return CaseMessage(event_id=text, at=NOW, text=text)
