"""EM and F1 of extracted answers, with MLQA's language-aware answer normalisation (the official
``mlqa_evaluation_v1.py`` of facebookresearch/MLQA, which extends SQuAD v1.1's):

1. lower-case; 2. drop every character of Unicode category P* and of ``string.punctuation``;
3. drop the language's articles (en: a, an, the; es: un, una, unos, unas, el, la, los, las;
   de: ein, eine, einen, einem, eines, einer, der, die, das, den, dem, des; vi: của, là, cái,
   chiếc, những; ar: the prefix ال, by MLQA's own pattern; none for hi and zh);
4. split into tokens: on whitespace, except Chinese, where every CJK character (U+4E00-U+9FA5) and
   punctuation mark is a token of its own and the rest is split on whitespace (mixed segmentation).

F1 is the token-overlap F1 of prediction and gold; EM whether the normalised strings are equal;
both take the maximum over the gold answers.

XQuAD has five languages MLQA does not: el, ro, ru and tr are scored as the whitespace languages
without articles; **th**, written without spaces between words, is segmented like Chinese with
every Thai character (U+0E00-U+0E7F) a token, so that F1 gives partial credit there as it does for
Chinese (whitespace splitting would make Thai F1 nearly equal to EM). This Thai rule is ours.
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence

_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
}
#: languages split into characters where the script has no spaces, with the characters that are
#: tokens of their own
_CHARACTER_SCRIPTS = {"zh": r"[\u4e00-\u9fa5]", "th": r"[\u0e00-\u0e7f]"}
LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


@functools.cache
def _punctuation() -> frozenset[str]:
    return frozenset(chr(i) for i in range(sys.maxunicode)
                     if unicodedata.category(chr(i)).startswith("P")) | frozenset(string.punctuation)


def _mixed_segmentation(text: str, script: str) -> list[str]:
    punct = _punctuation()
    tokens, pending = [], ""
    for char in text:
        if re.search(script, char) or char in punct:
            tokens.extend(pending.split())
            pending = ""
            tokens.append(char)
        else:
            pending += char
    tokens.extend(pending.split())
    return tokens


def normalize_answer(text: str, lang: str) -> str:
    """MLQA's normalisation (with the rules above for the languages MLQA lacks)."""
    if lang not in LANGUAGES:
        raise ValueError(f"no answer normalisation for language {lang!r}; known: {LANGUAGES}")
    punct = _punctuation()
    text = "".join(ch for ch in text.lower() if ch not in punct)
    if lang in _ARTICLES:
        text = re.sub(_ARTICLES[lang], " ", text)
    tokens = _mixed_segmentation(text, _CHARACTER_SCRIPTS[lang]) if lang in _CHARACTER_SCRIPTS else text.split()
    return " ".join(t for t in tokens if t.strip())


def f1(prediction: str, gold: str, lang: str) -> float:
    predicted, expected = normalize_answer(prediction, lang).split(), normalize_answer(gold, lang).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str, lang: str) -> float:
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def best_over_golds(metric, prediction: str, golds: Sequence[str], lang: str) -> float:
    """The metric against the best-matching gold answer (MLQA's metric_max_over_ground_truths)."""
    return max(metric(prediction, gold, lang) for gold in golds)
