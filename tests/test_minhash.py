"""MinHash signatures and LSH band tokens (pipeline/minhash.py)."""

from __future__ import annotations

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
    assert len(tokens) == HASHER.bands == len(set(tokens))


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
