"""Findings 3 and 4: phone numbers masked whatever their form; control characters removed."""

import pytest

from shared.text import PHONE_MASK, is_phone_number, mask_phones, strip_controls

MASKED = [
    # mobiles, every separator people use
    "0912345678",
    "0912 345 678",
    "0912  345 678",
    "0912   345   678",
    "0912/345/678",
    "0912_345_678",
    "0912.345.678",
    "0912-345-678",
    "0912 - 345 - 678",
    "(0912) 345 678",
    "0912\t345\t678",
    "0912·345·678",
    "09 12 34 56 78",
    # +84, 84, 0084
    "+84 912 345 678",
    "+84912345678",
    "+84-912-345-678",
    "(+84) 912 345 678",
    "84 912 345 678",
    "0084 912 345 678",
    # full-width and other digit forms
    "０９１２３４５６７８",
    "０９１２　３４５　６７８",
    "+８４ ９１２ ３４５ ６７８",
    "٠٩١٢٣٤٥٦٧٨",
    # landlines: Quảng Bình (0232), Hà Nội (024), old 10-digit forms, +84
    "0232 3822 123",
    "0232.3822.123",
    "(0232) 3.822.123",
    "024 3825 1234",
    "+84 232 3822 123",
    "052 3822 123",
    # old 11-digit mobiles
    "01234 567 890",
]
KEPT = [
    "tổ 5, nhà số 12, 2 người",
    "ngày 04/12/2026 lúc 10:30",
    "biển số 73A-123.45",
    "mất 10.000.000 đồng",
    "gọi 113 hoặc 114",
    "CCCD số 123456789",
    "năm 1990, cao 1m70, nặng 65 kg",
]


@pytest.mark.parametrize("phone", MASKED)
def test_every_written_form_is_masked(phone: str) -> None:
    masked = mask_phones(f"Gọi cho tôi số {phone} nhé, nhà số 12.")
    assert masked == f"Gọi cho tôi số {PHONE_MASK} nhé, nhà số 12.", phone


@pytest.mark.parametrize("text", KEPT)
def test_other_numbers_stay(text: str) -> None:
    assert mask_phones(text) == text


def test_a_number_after_a_house_number_and_two_numbers_in_a_row() -> None:
    assert mask_phones("số 12 0912 345 678") == f"số 12 {PHONE_MASK}"
    text = "0912345678 0987654321, hoặc 0232 3822 123"
    assert mask_phones(text) == f"{PHONE_MASK} {PHONE_MASK}, hoặc {PHONE_MASK}"


def test_no_digit_of_a_number_survives() -> None:
    for phone in MASKED:
        assert "345" not in mask_phones(phone).replace("３４５", "")


def test_long_digit_runs_stay_linear() -> None:
    text = "1 " * 50_000
    assert mask_phones(text) == text


@pytest.mark.parametrize(
    ("digits", "phone"),
    [
        ("0912345678", True),
        ("84912345678", True),
        ("0084912345678", True),
        ("02323822123", True),
        ("912345678", False),
        ("0012345678", False),
        ("123456789012", False),
        ("113", False),
    ],
)
def test_is_phone_number(digits: str, phone: bool) -> None:
    assert is_phone_number(digits) is phone


HOSTILE = [
    "\x1b]0;owned\x07",  # window title
    "\x1b[2J\x1b[H",  # clear screen
    "\x1b[31mred\x1b[0m",  # colours
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",  # OSC 52 clipboard write
    "\x9b31m",  # C1 CSI
    "\x9d0;title\x9c",  # C1 OSC ... ST
    "line\roverwritten",
    "\x00\x08\x7f",
    "\u202eevil",  # right-to-left override
]


@pytest.mark.parametrize("text", HOSTILE)
def test_controls_are_stripped(text: str) -> None:
    clean = strip_controls(f"Tin báo: {text} hết")
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in clean)
    assert "\u202e" not in clean
    assert clean.startswith("Tin báo: ")
    assert clean.endswith(" hết")


def test_vietnamese_text_and_newlines_stay() -> None:
    text = "Có người lạ\nđi xe máy Wave, biển 73A-123.45"
    assert strip_controls(text) == text
    assert strip_controls(text, keep_newlines=False) == text.replace("\n", "")
