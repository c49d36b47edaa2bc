"""The languages of every benchmark and their names, declared once."""

from __future__ import annotations

#: XQuAD languages other than English (the query languages of benchmark B1). Romanian is the
#: later LiRo addition and is left out of the standard 11-language setting.
XQUAD_LANGUAGES = ("ar", "de", "el", "es", "hi", "ru", "th", "tr", "vi", "zh")

#: XQuAD's twelve files (English and Romanian included): the third research question's matrix.
XQUAD_ALL = tuple(sorted(XQUAD_LANGUAGES + ("en", "ro")))

#: Languages a question can be generated in on B1: XQuAD gives its training pairs.
GENERATION_LANGUAGES = XQUAD_LANGUAGES + ("en",)

#: The languages of XQuAD-R (benchmark B2): the ten of B1 and English.
XQUADR_LANGUAGES = tuple(sorted(XQUAD_LANGUAGES + ("en",)))

#: XOR-TyDi's languages: the query (and generation) languages of benchmark B3, XOR-Retrieve.
XOR_LANGUAGES = ("ar", "bn", "fi", "ja", "ko", "ru", "te")

#: English names: the study's languages (the generator's prompt says "Generate a {name}
#: question") and the others py3langid may assign a generated query (for the prose).
LANGUAGE_NAMES = {
    "ar": "Arabic", "bn": "Bengali", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fi": "Finnish", "hi": "Hindi", "ja": "Japanese", "ko": "Korean",
    "ro": "Romanian", "ru": "Russian", "te": "Telugu", "th": "Thai", "tr": "Turkish",
    "vi": "Vietnamese", "zh": "Chinese",
    "arz": "Egyptian Arabic", "wuu": "Wu Chinese", "yue": "Cantonese", "ur": "Urdu", "mr": "Marathi",
    "ne": "Nepali", "fa": "Persian", "lo": "Lao", "km": "Khmer", "lb": "Luxembourgish", "nl": "Dutch",
}
