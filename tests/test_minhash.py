"""MinHash signatures and LSH band tokens (pipeline/minhash.py)."""

from __future__ import annotations

from datetime import timedelta

from pipeline import minhash
from pipeline.minhash import MinHasher
from pipeline.settings import CONFIG_DIR

HASHER = MinHasher.load(CONFIG_DIR / "dedup.yaml")
TEXT = ("Russia and China agreed on Tuesday to extend the gas supply contract for the Power of "
        "Siberia pipeline by ten years, the two companies said in a joint statement issued in "
        "Beijing after talks that lasted most of the day and covered prices and volumes.")


def test_signatures_are_deterministic_and_banded() -> None:
    signature = HASHER.signature(TEXT)
    assert signature == MinHasher.load(CONFIG_DIR / "dedup.yaml").signature(TEXT)
    assert len(signature) == HASHER.permutations
    tokens = HASHER.band_tokens(signature)
    assert len(tokens) == HASHER.bands + HASHER.fine_bands == len(set(tokens))


def test_similarity_estimates_jaccard() -> None:
    trimmed = TEXT.split(", the two companies")[0] + "."
    unrelated = ("The national football team lost its qualifying match in Lisbon on Saturday "
                 "after conceding two goals in the second half of a rain-soaked game.")
    same = HASHER.similarity(HASHER.signature(TEXT), HASHER.signature(TEXT.upper() + "!"))
    assert same == 1.0  # case and punctuation are folded away
    near = HASHER.similarity(HASHER.signature(TEXT), HASHER.signature(trimmed))
    far = HASHER.similarity(HASHER.signature(TEXT), HASHER.signature(unrelated))
    assert 0.2 < near < 0.9 and far < 0.1


def test_mixed_script_copy_is_cut_like_its_original() -> None:
    mixed = ("Лавров и Ван И обсудили 中俄关系 и торговлю в юанях; 双方同意 расширить расчёты "
             "в национальных валютах 并加强 能源合作 в Арктике и на Дальнем Востоке.")
    copy = mixed.split(" ", 3)[3]  # the first words cut, the balance of scripts changed
    assert HASHER.similarity(HASHER.signature(mixed), HASHER.signature(copy)) >= HASHER.threshold


def test_empty_text_has_no_shingles() -> None:
    assert HASHER.shingles("") == set() and HASHER.shingles("  —  ") == set()
    assert len(HASHER.shingles("one two")) == 1


def test_long_texts_are_hashed_in_chunks_with_the_same_signature(monkeypatch) -> None:
    """A page of megabytes is hashed a chunk of shingles at a time (bounded memory), and the
    signature is the one hashing every shingle at once gives."""
    long_text = " ".join(f"{word} {i}" for i, word in enumerate(TEXT.split() * 300))
    assert len(HASHER.shingles(long_text)) > 3 * minhash._CHUNK
    chunked = HASHER.signature(long_text)
    monkeypatch.setattr(minhash, "_CHUNK", 10**9)
    assert HASHER.signature(long_text) == chunked


def _article(seed: int, paragraphs: int = 8) -> str:
    import random

    rng = random.Random(seed)
    words = ["pipeline", "gas", "Moscow", "Beijing", "talks", "contract", "price", "volume", "summit", "delegation", "trade", "yuan", "ruble", "bank", "payments", "border", "bridge", "railway", "customs", "sanctions", "exports", "imports", "drills", "navy", "patrol", "ministry", "statement", "agreement", "partnership", "energy", "coal", "oil", "grain", "wheat", "soybeans", "tourists", "visa", "logistics", "freight", "cargo", "terminal", "port", "Arctic", "route"]
    return "\n\n".join(" ".join(rng.choice(words) for _ in range(40)) for _ in range(paragraphs))


def test_size_is_estimated_from_the_signature() -> None:
    text = _article(1)
    size = len(HASHER.shingles(text))
    assert abs(HASHER.size(HASHER.signature(text)) - size) < 0.3 * size


def test_a_copy_cut_to_its_first_paragraphs_is_a_copy() -> None:
    original = _article(2)
    cut = ("MOSCOW, Dec 3 (Agency) - " + original[:int(len(original) * 0.4)]
           + "\n\nReporting by staff correspondents. Follow us for more news.")
    first, second = HASHER.signature(original), HASHER.signature(cut)
    assert HASHER.similarity(first, second) < HASHER.threshold  # not by Jaccard alone
    assert HASHER.copy_similarity(first, second) >= HASHER.containment
    assert set(HASHER.band_tokens(first)) & set(HASHER.band_tokens(second))  # a candidate


def test_other_articles_are_not_copies_whatever_their_lengths() -> None:
    long, other = HASHER.signature(_article(3, 12)), HASHER.signature(_article(4, 3))
    assert HASHER.copy_similarity(long, other) == 0.0


def test_a_copy_is_published_within_the_window_of_its_original() -> None:
    original = _article(5)
    copy = original + "\n\nReporting by staff correspondents."
    first, second = HASHER.signature(original), HASHER.signature(copy)
    window = timedelta(days=HASHER.window_days)
    assert HASHER.copy_similarity(first, second) > 0  # no times known: the text decides
    assert HASHER.copy_similarity(first, second, window) > 0
    assert HASHER.copy_similarity(first, second, -window) > 0  # the copy claims to be earlier
    assert HASHER.copy_similarity(first, second, window + timedelta(hours=1)) == 0.0
    assert HASHER.copy_similarity(first, second, -window - timedelta(hours=1)) == 0.0
