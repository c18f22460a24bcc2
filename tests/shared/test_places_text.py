import unicodedata

import pytest

from shared.places import fold, fold_phrase, slugify


class TestFold:
    @pytest.mark.parametrize("spelling", ["Thanh Hoá", "Thanh Hóa", "THANH HOÁ", "thanh hoa"])
    def test_both_tone_mark_placements_fold_alike(self, spelling: str) -> None:
        assert fold_phrase(spelling) == "thanh hoa"

    def test_nfc_and_nfd_fold_alike(self) -> None:
        name = "Đức Ninh Đông"
        nfd = unicodedata.normalize("NFD", name)
        assert nfd != name
        assert fold(nfd) == fold(name) == "duc ninh dong"

    def test_slug_follows_the_reference_rule(self) -> None:
        assert slugify("Đồng Hới") == "dong-hoi"
        assert slugify("  Bắc   Lý! ") == "bac-ly"
