"""`Tokenizer`: the cached tokenizer on the hot path cuts texts exactly as `tokenize`."""

from services.reports.lexicon import Tokenizer, tokenize
from services.reports.triage import TriageRules

TEXTS = [
    "ck e dang danh vk, ko ai can dc",
    "Chồng em đang đánh vợ, không ai can được",
    "bít j đâu, bữa ni ở mô rứa, mn ơi",
    "",
]


def test_cached_tokens_equal_tokenize() -> None:
    abbreviations = TriageRules.load().abbreviations
    tokenizer = Tokenizer(abbreviations)
    for _ in range(2):  # the second pass reads the cache
        for text in TEXTS:
            assert tokenizer(text) == tokenize(text, abbreviations)
