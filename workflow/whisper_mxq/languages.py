"""The one place that maps FLEURS language configs to Whisper language codes."""

# The tutorial's 17 languages, in the tutorial's order (FLEURS config -> Whisper code).
FLEURS_TO_WHISPER: dict[str, str] = {
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

DEFAULT_LANGUAGES: list[str] = list(FLEURS_TO_WHISPER)


def whisper_code(fleurs_lang: str) -> str:
    """Whisper language code for a FLEURS config; a clear error for one we do not map."""
    try:
        return FLEURS_TO_WHISPER[fleurs_lang]
    except KeyError:
        known = ", ".join(FLEURS_TO_WHISPER)
        raise ValueError(
            f"language {fleurs_lang!r} is not a FLEURS config this workflow maps to Whisper (known: {known})"
        ) from None
