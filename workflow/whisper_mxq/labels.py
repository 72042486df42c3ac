"""Step 1b: reference labels with openai-whisper (large-v3 by default).

Each clip is transcribed in its source language and translated to English. Clips are
decoded in batches (`whisper.decode` takes a batch of log-mel segments), where the
tutorial ran `model.transcribe` one file at a time. Greedy decoding at temperature 0;
clips are at most 30 s, so one window covers each.
"""

from __future__ import annotations

import os

from . import atomic, audio
from .languages import whisper_code


def _mel_batch(model, wav_paths: list[str]):
    import torch
    import whisper

    mels = [
        whisper.log_mel_spectrogram(
            whisper.pad_or_trim(torch.from_numpy(audio.load(p))), n_mels=model.dims.n_mels
        )
        for p in wav_paths
    ]
    return torch.stack(mels).to(model.device)


def _decode(model, mels, language: str, task: str, max_tokens: int) -> list[str]:
    import whisper
    from whisper.tokenizer import get_tokenizer

    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    options = whisper.DecodingOptions(
        language=language,
        task=task,
        without_timestamps=True,
        fp16=model.device.type == "cuda",
        sample_len=max_tokens,
        # -1: openai-whisper's usual non-speech set. <|notimestamps|> is prompt-only when
        # timestamps are off; a weak model that emits it would leak it into the text.
        suppress_tokens=[-1, tokenizer.no_timestamps],
    )
    return [r.text.strip() for r in whisper.decode(model, mels, options)]


def label_group(
    model_path: str,
    lang: str,
    wav_paths: list[str],
    out_json: str,
    *,
    batch_size: int = 16,
    max_tokens: int = 224,
    device: str = "cpu",
) -> dict:
    """Transcribe and translate one group of clips of one language -> `out_json`."""
    import whisper

    model = whisper.load_model(model_path, device=device)
    language = whisper_code(lang)
    if not model.is_multilingual and language != "en":
        raise ValueError(
            f"config key 'labels.model': {model_path} is English-only and cannot label {lang!r}"
        )
    labels: dict[str, dict] = {}
    for start in range(0, len(wav_paths), batch_size):
        batch = wav_paths[start : start + batch_size]
        mels = _mel_batch(model, batch)
        texts = _decode(model, mels, language, "transcribe", max_tokens)
        # An English-only model has no translate task; English audio is its own translation.
        if model.is_multilingual:
            translations = _decode(model, mels, language, "translate", max_tokens)
        else:
            translations = texts
        for path, text, translation in zip(batch, texts, translations):
            labels[os.path.basename(path)] = {"transcription": text, "translation": translation}
    atomic.write_json(out_json, {"language": lang, "labels": labels})
    return labels


def merge_labels(
    group_jsons: list[str], transcriptions_path: str, translations_path: str
) -> None:
    """Group outputs -> the tutorial's transcriptions.json and translations.json."""
    transcriptions: dict[str, str] = {}
    translations: dict[str, dict] = {}
    for path in group_jsons:
        group = atomic.read_json(path)
        lang = group["language"]
        for file, label in group["labels"].items():
            transcriptions[file] = label["transcription"]
            translations[file] = {
                "source_language_fleurs": lang,
                "source_language_whisper": whisper_code(lang),
                "target_language": "en",
                "translation": label["translation"],
            }
    atomic.write_json(transcriptions_path, transcriptions)
    atomic.write_json(translations_path, translations)
