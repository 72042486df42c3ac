"""The one place that maps FLEURS language configs to Whisper language codes."""

# The tutorial's 17 languages, in the tutorial's order (FLEURS config -> Whisper code).
TUTORIAL_LANGUAGES: dict[str, str] = {
    "ar_eg": "ar",
    "cmn_hans_cn": "zh",
    "de_de": "de",
    "el_gr": "el",
    "en_us": "en",
    "es_419": "es",
    "fr_fr": "fr",
    "id_id": "id",
    "it_it": "it",
    "ja_jp": "ja",
    "ko_kr": "ko",
    "pt_br": "pt",
    "ru_ru": "ru",
    "ta_in": "ta",
    "th_th": "th",
    "ur_pk": "ur",
    "vi_vn": "vi",
}

# Every FLEURS config the workflow maps: the tutorial's, and Swedish (real recorded
# speech in the tests comes in Swedish).
FLEURS_TO_WHISPER: dict[str, str] = {**TUTORIAL_LANGUAGES, "sv_se": "sv"}

DEFAULT_LANGUAGES: list[str] = list(TUTORIAL_LANGUAGES)

# Whisper codes of languages written without spaces between words: their quality
# verdict is on CER (a WER would count whole sentences).
UNSEGMENTED: frozenset[str] = frozenset({"zh", "ja", "th"})


def whisper_code(fleurs_lang: str) -> str:
    """Whisper language code for a FLEURS config; a clear error for one we do not map."""
    try:
        return FLEURS_TO_WHISPER[fleurs_lang]
    except KeyError:
        known = ", ".join(FLEURS_TO_WHISPER)
        raise ValueError(
            f"language {fleurs_lang!r} is not a FLEURS config this workflow maps to Whisper (known: {known})"
        ) from None
