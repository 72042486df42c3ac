"""Offline stand-ins for what the workflow normally downloads from the Hugging Face Hub.

Tests, the demo config and CI run with no Hub access, so everything here is built from
what installed packages ship: the Whisper tokenizer, converted from openai-whisper's
tiktoken files by transformers' own TikTokenConverter and written in the Hub's layout
(which transformers 4.50 and 5 both read), tiny randomly initialised Whisper models
(Hugging Face and openai-whisper formats), and FLEURS-shaped Parquet shards holding
real speech synthesised by espeak-ng. Every builder is deterministic for given
arguments and writes atomically.

torch, transformers, datasets and whisper are imported inside the functions that use
them, so importing this module (or the package) stays cheap.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import subprocess
import tempfile
import unicodedata
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_mxq import layout
from whisper_mxq.atomic import atomic_dir, atomic_path, write_bytes
from whisper_mxq.languages import FLEURS_TO_WHISPER

if TYPE_CHECKING:
    from datasets import Features
    from transformers import GenerationConfig, WhisperConfig, WhisperTokenizerFast

# openai-whisper's default: large-v3 added a 100th language (yue), every other
# checkpoint has 99, which gives the 51865 (multilingual) / 51864 (English) vocabularies.
NUM_LANGUAGES = 99

# ---------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------


def language_tokens(num_languages: int = NUM_LANGUAGES) -> list[str]:
    """<|en|>, <|zh|>, ... in openai-whisper's order, which fixes their ids."""
    from whisper.tokenizer import LANGUAGES

    return [f"<|{code}|>" for code in list(LANGUAGES)[:num_languages]]


def whisper_special_tokens(num_languages: int = NUM_LANGUAGES) -> list[str]:
    """Whisper's control tokens in openai-whisper's id order, <|endoftext|> first.

    English-only checkpoints carry the language tokens too (openai-whisper adds them for
    both vocabularies), which is why tiny.en has 51864 ids.
    """
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *language_tokens(num_languages),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]


def timestamp_tokens() -> list[str]:
    """<|0.00|> .. <|30.00|> in 0.02 s steps, the ids right after <|notimestamps|>."""
    return [f"<|{i * 0.02:.2f}|>" for i in range(1501)]


def _tiktoken_file(name: str) -> str:
    """openai-whisper's packaged vocabulary ("multilingual" or "gpt2")."""
    import whisper

    return str(Path(whisper.__file__).parent / "assets" / f"{name}.tiktoken")


@cache
def tokenizer_json(english_only: bool = False, num_languages: int = NUM_LANGUAGES) -> str:
    """Whisper's tokenizer as a `tokenizer.json`, converted from openai-whisper's tiktoken
    vocabulary by transformers' own TikTokenConverter (cached: ~1 s).

    Control tokens are special, timestamps plain added tokens, as on the Hub. Every id
    is checked against openai-whisper's encoding: a conversion that numbered anything
    differently (multilingual's empty rank-50256 entry dropped, say) would shift every
    special token id, so it fails here instead.
    """
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from whisper.tokenizer import get_encoding

    name = "gpt2" if english_only else "multilingual"
    encoding = get_encoding(name, num_languages=num_languages)
    control = whisper_special_tokens(num_languages)
    # transformers 5 calls the argument extra_special_tokens, 4.x additional_special_tokens;
    # each ignores the other's.
    converter = TikTokenConverter(
        vocab_file=_tiktoken_file(name),
        pattern=encoding._pat_str,
        extra_special_tokens=control,
        additional_special_tokens=control,
    )
    tok = converter.converted()
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in timestamp_tokens()])
    wrong = {t: (tok.token_to_id(t), i) for t, i in encoding._special_tokens.items() if tok.token_to_id(t) != i}
    if wrong or tok.get_vocab_size() != encoding.n_vocab:
        raise RuntimeError(
            f"converted Whisper tokenizer disagrees with openai-whisper's ids: {dict(list(wrong.items())[:5])}, "
            f"{tok.get_vocab_size()} ids against {encoding.n_vocab}"
        )
    return tok.to_str()


def write_tokenizer(
    folder: str | os.PathLike, english_only: bool = False, *, num_languages: int = NUM_LANGUAGES
) -> None:
    """Whisper's tokenizer files in the Hub repositories' layout (tokenizer.json,
    tokenizer_config.json, vocab.json, merges.txt), which transformers 4.50 and 5 read."""
    from whisper_mxq import models

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tokenizer_json(english_only, num_languages), encoding="utf-8")
    eot = "<|endoftext|>"
    config = {
        "tokenizer_class": "WhisperTokenizer",
        "model_max_length": 448,
        "bos_token": eot,
        "eos_token": eot,
        "unk_token": eot,
        "pad_token": eot,
        "additional_special_tokens": whisper_special_tokens(num_languages),
        "add_prefix_space": False,
        "errors": "replace",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    models.make_portable(folder)


def build_tokenizer(english_only: bool = False, *, num_languages: int = NUM_LANGUAGES) -> WhisperTokenizerFast:
    """Whisper's Hugging Face tokenizer, built offline from openai-whisper's vocabulary.

    Ids match openai-whisper's own tokenizer. Loaded from files written as the Hub's
    (write_tokenizer), so transformers 4.50 and 5 build the same object; a new object
    each call, so one caller's `set_prefix_tokens` never leaks into another's.
    """
    from transformers import WhisperTokenizerFast

    with tempfile.TemporaryDirectory(prefix="whisper-tokenizer.") as tmp:
        write_tokenizer(tmp, english_only, num_languages=num_languages)
        return WhisperTokenizerFast.from_pretrained(tmp, local_files_only=True)


# ---------------------------------------------------------------------------------------
# Tiny Hugging Face model
# ---------------------------------------------------------------------------------------


def _token_ids(tok: WhisperTokenizerFast, tokens: list[str]) -> dict[str, int]:
    return {t: tok.convert_tokens_to_ids(t) for t in tokens}


def _generation_config(tok: WhisperTokenizerFast, english_only: bool) -> GenerationConfig:
    """What Whisper's `generate` reads to force language and task, as Hub checkpoints carry.

    Without is_multilingual / lang_to_id / task_to_id, generate(language=..., task=...)
    refuses; without no_timestamps_token_id it cannot prompt for text without timestamps.
    """
    from transformers import GenerationConfig

    ids = _token_ids(tok, whisper_special_tokens())
    eot = ids["<|endoftext|>"]
    fields: dict[str, Any] = dict(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=448,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        max_initial_timestamp_index=50,
        return_timestamps=False,
        # Real checkpoints forbid a leading space or end-of-text as the first text token;
        # that also makes the random model emit at least one token. A trained model never
        # emits special or timestamp tokens mid-text; a random one mostly does, which
        # would leave the demo's decoder calibration without text. So every special id
        # above end-of-text is suppressed: the random model then "speaks" text tokens.
        begin_suppress_tokens=[tok.convert_tokens_to_ids("Ġ"), eot],
        suppress_tokens=list(range(eot + 1, len(tok))),
        is_multilingual=not english_only,
    )
    if not english_only:
        fields["lang_to_id"] = _token_ids(tok, language_tokens())
        fields["task_to_id"] = {
            "transcribe": ids["<|transcribe|>"],
            "translate": ids["<|translate|>"],
        }
    return GenerationConfig(**fields)


def _whisper_config(tok: WhisperTokenizerFast, num_mel_bins: int, d_model: int) -> WhisperConfig:
    """Whisper-small's shape (1500 audio positions, 448 text positions) at toy width."""
    from transformers import WhisperConfig

    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    return WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=num_mel_bins,
        d_model=d_model,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        # Generation settings live in generation_config only. WhisperConfig's default
        # (220, 50256) names the English-only end-of-text, the empty token here.
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )


def build_tiny_model(
    out_dir: str | os.PathLike,
    *,
    num_mel_bins: int = 80,
    d_model: int = 64,
    english_only: bool = False,
    seed: int = 0,
) -> None:
    """Save a tiny random `WhisperForConditionalGeneration` with processor and generation config.

    A stand-in for a Hub checkpoint folder: loads with from_pretrained offline and
    generates with language/task forced. Same arguments give byte-identical weights.
    """
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    tok = build_tokenizer(english_only)
    torch.manual_seed(seed)  # the only source of randomness in the weights
    model = WhisperForConditionalGeneration(_whisper_config(tok, num_mel_bins, d_model)).eval()
    model.generation_config = _generation_config(tok, english_only)
    features = WhisperFeatureExtractor(feature_size=num_mel_bins)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)  # safetensors
        # The processor in the Hub's layout, which transformers 4.50 (beside qbcompiler)
        # and 5 both read: tokenizer files and preprocessor_config.json.
        write_tokenizer(tmp, english_only)
        features.save_pretrained(tmp)


# ---------------------------------------------------------------------------------------
# Tiny openai-whisper checkpoint
# ---------------------------------------------------------------------------------------


def build_tiny_openai_whisper(out_path: str | os.PathLike, *, seed: int = 0, n_mels: int = 80) -> None:
    """Save a tiny random checkpoint that `whisper.load_model(out_path)` accepts.

    The label step loads large-v3 this way; this stand-in has the same context sizes and
    multilingual vocabulary at toy width. Plain dicts and tensors only, so
    torch.load(weights_only=True), which openai-whisper uses, accepts it.
    """
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(
        n_mels=n_mels,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51865,
        n_text_ctx=448,
        n_text_state=64,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(seed)
    model = Whisper(dims)
    # openai-whisper allocates this one with torch.empty (real checkpoints overwrite it):
    # left alone it holds whatever memory held, even NaN, and differs run to run.
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    # The tensors are the same for a seed; the file's bytes are not, because torch.save
    # stamps a random serialization_id into the archive.
    buffer = io.BytesIO()  # not a file path: torch.save would name the archive after it
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, buffer)
    write_bytes(out_path, buffer.getvalue())


# ---------------------------------------------------------------------------------------
# FLEURS-shaped speech data
# ---------------------------------------------------------------------------------------

# FLEURS config -> (espeak-ng voice, lang_id, language, lang_group_id). lang_id is the
# config's index in FLEURS' sorted list of 102 configs and lang_group_id its region group
# (0 western European, 1 eastern European, 2 central Asia / Middle East / north Africa,
# 4 south Asian, 5 south-east Asian, 6 CJK), written from memory of the dataset script:
# nothing in the workflow reads them. cmn-latn-pinyin, not cmn: espeak-ng 1.51's "cmn"
# voice reads the tone digits of its pinyin aloud in English ("ni three hao three").
FLEURS_LANGS: dict[str, tuple[str, int, str, int]] = {
    "ar_eg": ("ar", 2, "Arabic", 2),
    "cmn_hans_cn": ("cmn-latn-pinyin", 13, "Mandarin Chinese", 6),
    "de_de": ("de", 17, "German", 0),
    "el_gr": ("el", 18, "Greek", 0),
    "en_us": ("en-us", 19, "English", 0),
    "es_419": ("es-419", 20, "Spanish", 0),
    "fr_fr": ("fr-fr", 26, "French", 0),
    "id_id": ("id", 36, "Indonesian", 5),
    "it_it": ("it", 39, "Italian", 0),
    "ja_jp": ("ja", 40, "Japanese", 6),
    "ko_kr": ("ko", 48, "Korean", 6),
    "pt_br": ("pt-br", 76, "Portuguese", 0),
    "ru_ru": ("ru", 78, "Russian", 1),
    "sv_se": ("sv", 84, "Swedish", 0),
    "ta_in": ("ta", 87, "Tamil", 4),
    "th_th": ("th", 90, "Thai", 5),
    "ur_pk": ("ur", 94, "Urdu", 4),
    "vi_vn": ("vi", 96, "Vietnamese", 5),
}

# The same six everyday sentences in each language (parallel, as FLEURS is: a sentence
# keeps its `id` across languages). Languages whose espeak-ng voice reads its script well.
DEMO_SENTENCES: dict[str, list[str]] = {
    "en_us": [
        "The weather is nice today.",
        "She reads a book every evening.",
        "We took the train to the city.",
        "The children are playing in the park.",
        "Please close the door when you leave.",
        "My brother works at a small bakery.",
    ],
    "de_de": [
        "Das Wetter ist heute schön.",
        "Sie liest jeden Abend ein Buch.",
        "Wir sind mit dem Zug in die Stadt gefahren.",
        "Die Kinder spielen im Park.",
        "Bitte schließ die Tür, wenn du gehst.",
        "Mein Bruder arbeitet in einer kleinen Bäckerei.",
    ],
    "fr_fr": [
        "Il fait beau aujourd'hui.",
        "Elle lit un livre chaque soir.",
        "Nous avons pris le train pour aller en ville.",
        "Les enfants jouent dans le parc.",
        "Ferme la porte quand tu pars, s'il te plaît.",
        "Mon frère travaille dans une petite boulangerie.",
    ],
    "es_419": [
        "Hoy hace buen tiempo.",
        "Ella lee un libro todas las noches.",
        "Tomamos el tren para ir a la ciudad.",
        "Los niños juegan en el parque.",
        "Por favor, cierra la puerta cuando salgas.",
        "Mi hermano trabaja en una pequeña panadería.",
    ],
    "it_it": [
        "Oggi il tempo è bello.",
        "Lei legge un libro ogni sera.",
        "Abbiamo preso il treno per andare in città.",
        "I bambini giocano nel parco.",
        "Per favore, chiudi la porta quando esci.",
        "Mio fratello lavora in un piccolo panificio.",
    ],
    "pt_br": [
        "O tempo está bom hoje.",
        "Ela lê um livro todas as noites.",
        "Pegamos o trem para ir à cidade.",
        "As crianças brincam no parque.",
        "Por favor, feche a porta quando sair.",
        "Meu irmão trabalha em uma pequena padaria.",
    ],
    "ru_ru": [
        "Сегодня хорошая погода.",
        "Она читает книгу каждый вечер.",
        "Мы поехали в город на поезде.",
        "Дети играют в парке.",
        "Пожалуйста, закрой дверь, когда уходишь.",
        "Мой брат работает в маленькой пекарне.",
    ],
    "cmn_hans_cn": [
        "今天天气很好。",
        "她每天晚上看书。",
        "我们坐火车去城里。",
        "孩子们在公园里玩。",
        "你走的时候请关门。",
        "我哥哥在一家小面包店工作。",
    ],
}

FLEURS_COLUMNS: tuple[str, ...] = (
    "id",
    "num_samples",
    "path",
    "audio",
    "transcription",
    "raw_transcription",
    "gender",
    "lang_id",
    "language",
    "lang_group_id",
)


@cache
def _espeak_voices() -> frozenset[str]:
    """Voices espeak-ng knows: its language names ("de", "cmn-latn-pinyin") and
    "+variant" suffixes ("+f3")."""

    def listing(*args: str) -> list[str]:
        done = subprocess.run(["espeak-ng", *args], capture_output=True, text=True, check=True)
        return done.stdout.splitlines()[1:]  # below the header row

    languages = {line.split()[1] for line in listing("--voices") if line.strip()}
    variants = {"+" + line.rsplit("!v/", 1)[1].strip() for line in listing("--voices=variant") if "!v/" in line}
    return frozenset(languages | variants)


def _check_voice(voice: str) -> None:
    """Fail on a voice espeak-ng lacks: reading from stdin it silently falls back to
    English instead, which would put English speech under another language's label."""
    base, plus, variant = voice.partition("+")
    unknown = [name for name in (base, plus + variant) if name and name not in _espeak_voices()]
    if unknown:
        raise ValueError(f"espeak-ng has no voice {' or '.join(unknown)!s} (asked for {voice!r})")


def espeak_wav(text: str, voice: str, *, speed: int = 150, pitch: int = 50) -> bytes:
    """Speak `text` with espeak-ng: WAV bytes, 22050 Hz mono 16-bit.

    Speed and pitch are pinned so the same text gives the same bytes. The text goes in
    on stdin (UTF-8 forced), never on the command line, so it cannot be read as an option.
    """
    _check_voice(voice)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        settings = ["-b", "1", "-v", voice, "-s", str(speed), "-p", str(pitch)]  # -b 1: UTF-8
        cmd = ["espeak-ng", *settings, "-w", str(wav), "--stdin"]
        done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0 or not wav.exists():
            raise RuntimeError(f"espeak-ng -v {voice} failed: {done.stderr.decode(errors='replace').strip()}")
        return wav.read_bytes()


def normalize_transcription(text: str) -> str:
    """FLEURS' `transcription` style: lower case, punctuation dropped (apostrophes kept)."""
    kept = (" " if unicodedata.category(c).startswith("P") and c != "'" else c for c in text.lower())
    return " ".join("".join(kept).split())


def _num_samples(wav: bytes) -> int:
    """Frame count of a clip; 0 for bytes soundfile cannot read (a deliberately bad clip)."""
    import soundfile as sf

    try:
        return sf.info(io.BytesIO(wav)).frames
    except RuntimeError:  # soundfile's LibsndfileError: not audio it can parse
        return 0


def fleurs_row(fleurs_lang: str, index: int, text: str, wav: bytes, *, gender: int = 0) -> dict[str, Any]:
    """One FLEURS row for clip `index` of a language, holding `wav` as raw bytes.

    Public so tests can build shards with bad clips (garbage or truncated bytes) for
    write_fleurs_rows.
    """
    _, lang_id, language, group = FLEURS_LANGS[fleurs_lang]
    return {
        "id": index + 1,
        "num_samples": _num_samples(wav),
        "path": f"{fleurs_lang}_{index:04d}.wav",
        "audio": wav,
        "transcription": normalize_transcription(text),
        "raw_transcription": text,
        "gender": gender,
        "lang_id": lang_id,
        "language": language,
        "lang_group_id": group,
    }


def _fleurs_features() -> Features:
    """FLEURS' column types (class labels stored as plain ints), audio as a bytes/path struct.

    The struct is cast to Audio afterwards: datasets 5 encodes Audio values through
    torchcodec (not installed, needs FFmpeg) even when they are bytes already, while a
    cast works on the Arrow storage and needs neither.
    """
    from datasets import Features, Value

    text, label = Value("string"), Value("int64")
    return Features(
        {
            "id": Value("int32"),
            "num_samples": Value("int32"),
            "path": text,
            "audio": {"bytes": Value("binary"), "path": text},
            "transcription": text,
            "raw_transcription": text,
            "gender": label,
            "lang_id": label,
            "language": text,
            "lang_group_id": label,
        }
    )


def write_fleurs_rows(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Write rows (FLEURS columns, `audio` as raw WAV bytes) as one Parquet shard, atomically.

    The bytes are stored untouched, bad ones included, so tests can make shards with
    broken clips. Going through `datasets` embeds its features metadata, which is what
    makes load_dataset("parquet", ...) report an Audio column as the Hub export does.
    """
    from datasets import Audio, Dataset

    for row in rows:
        if set(row) != set(FLEURS_COLUMNS):
            wrong = sorted(set(row) ^ set(FLEURS_COLUMNS))
            raise ValueError(f"row {row.get('path')!r}: columns {wrong} missing or not FLEURS'")
    columns = {name: [row[name] for row in rows] for name in FLEURS_COLUMNS}
    columns["audio"] = [{"bytes": row["audio"], "path": row["path"]} for row in rows]
    dataset = Dataset.from_dict(columns, features=_fleurs_features()).cast_column("audio", Audio())
    with atomic_path(path) as tmp:
        dataset.to_parquet(str(tmp))


def _demo_sentences(languages: dict[str, list[str] | None] | None) -> dict[str, list[str]]:
    """Sentences per language; None (for all or one language) means DEMO_SENTENCES'."""
    chosen = {lang: None for lang in DEMO_SENTENCES} if languages is None else languages
    unknown = sorted(set(chosen) - set(FLEURS_TO_WHISPER))
    missing = sorted(lang for lang, s in chosen.items() if s is None and lang not in DEMO_SENTENCES)
    if unknown or missing:
        raise ValueError(
            f"FLEURS configs not mapped to Whisper: {unknown}; with no demo sentences: {missing} "
            f"(demo sentences exist for {list(DEMO_SENTENCES)})"
        )
    return {lang: DEMO_SENTENCES[lang] if s is None else list(s) for lang, s in chosen.items()}


def build_fleurs_demo(
    out_dir: str | os.PathLike,
    *,
    languages: dict[str, list[str] | None] | None = None,
    split: str = "validation",
    seed: int = 0,
) -> None:
    """FLEURS-shaped shards of espeak-ng speech: `{out_dir}/{lang}/{split}/0000.parquet`.

    The layout of the Hub's Parquet export, so the downloader reads it unchanged. Clips
    stay at espeak-ng's 22050 Hz (FLEURS is 16 kHz) so the resampling path gets
    exercised. `seed` picks each clip's speaker gender and matching voice variant;
    a language's shard depends only on its sentences, `seed` and its name.
    """
    for fleurs_lang, sentences in _demo_sentences(languages).items():
        rng = random.Random(f"{seed}:{fleurs_lang}")  # str seeds are stable across runs
        rows = []
        for index, text in enumerate(sentences):
            gender = rng.randrange(2)  # FLEURS: 0 male, 1 female
            voice = f"{FLEURS_LANGS[fleurs_lang][0]}+{'f3' if gender else 'm3'}"
            rows.append(fleurs_row(fleurs_lang, index, text, espeak_wav(text, voice), gender=gender))
        write_fleurs_rows(layout.DEMO_SHARD.format(folder=out_dir, lang=fleurs_lang, split=split), rows)
