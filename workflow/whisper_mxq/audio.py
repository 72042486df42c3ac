"""Audio checks and conversion: decode, validate, resample to Whisper's 16 kHz mono.

Nothing here trusts a file or a header: only regular files of bounded size are read
(a FIFO would block the reader forever, a character device such as /dev/zero never
ends), and a header's rate, channels and length are checked before any sample is
decoded or resampled (a header claiming an absurd rate makes the resampler ask for
gigabytes).
"""

from __future__ import annotations

import io
import os
import re
import stat
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import soundfile as sf
# soundfile is imported where a clip is read or written: the Snakefile imports this
# package while it plans, in an environment that may hold Snakemake and little else.

SAMPLE_RATE = 16_000  # Whisper's input rate (whisper.audio.SAMPLE_RATE)
MAX_SECONDS = 30.0  # Whisper sees one 30 s window; longer clips would be cut silently
# A syllable lasts ~0.1-0.2 s: anything shorter holds no word (a few stray samples).
MIN_SECONDS = 0.1
SILENCE_PEAK = 1e-4  # below this peak amplitude a clip carries no speech
# Rates outside this range are no recording of speech: telephony is 8 kHz, studio
# audio at most 384 kHz. Checked from the header, before soxr sizes its filters.
MIN_RATE, MAX_RATE = 4_000, 384_000
MAX_CHANNELS = 32
# 30 s at 384 kHz in 2 channels of 32-bit samples is 92 MB; FLEURS clips are ~1 MB.
MAX_FILE_BYTES = 128 * 1024 * 1024
# A sample at or beyond this magnitude sits at full scale: the recording clipped (a
# 16-bit PCM peak is 32767/32768 = 0.99997).
FULL_SCALE = 0.999


class BadAudio(ValueError):
    """A clip that cannot serve as calibration data; the message says why."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, else BadAudio naming it.

    stat() (through links) refuses FIFOs and devices before they are opened; the open
    is non-blocking and the opened descriptor is checked again, so a file swapped for a
    FIFO between the two cannot hang the job either. At most `max_bytes + 1` bytes are
    ever read, so a file growing while read is refused too. `max_bytes` defaults to
    MAX_FILE_BYTES.
    """
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    try:
        info = os.stat(path)
    except FileNotFoundError as e:
        raise BadAudio(f"{path}: no such file") from e
    except OSError as e:
        raise BadAudio(f"{path}: cannot read ({e.strerror or e})") from e
    _check_regular(path, info, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise BadAudio(f"{path}: cannot read ({e.strerror or e})") from e
    with os.fdopen(fd, "rb") as f:
        _check_regular(path, os.fstat(f.fileno()), max_bytes)
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadAudio(f"{path}: over {max_bytes} bytes (it grew while read)")
    return data


def _check_regular(path, info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise BadAudio(f"{path}: {file_kind(info.st_mode)}, not a regular file; only regular files are read")
    if info.st_size > max_bytes:
        raise BadAudio(f"{path}: {info.st_size} bytes, over the {max_bytes} an audio clip may have")


def check_header(data: bytes, name: str) -> sf._SoundFileInfo:
    """Rate, channels and length from the header, before any sample is decoded."""
    if len(data) > MAX_FILE_BYTES:
        raise BadAudio(f"{name}: {len(data)} bytes, over the {MAX_FILE_BYTES} an audio clip may have")
    try:
        import soundfile as sf

        info = sf.info(io.BytesIO(data))
    except Exception as e:  # soundfile raises several types for corrupt input
        raise BadAudio(f"{name}: cannot decode audio ({_why(e)})") from e
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise BadAudio(f"{name}: sample rate {info.samplerate} Hz in its header is outside {MIN_RATE}..{MAX_RATE} Hz")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise BadAudio(f"{name}: {info.channels} channels in its header (at most {MAX_CHANNELS})")
    if info.frames <= 0:
        raise BadAudio(f"{name}: empty audio")
    _check_length(info.frames / info.samplerate, name)
    return info


def _check_length(seconds: float, name: str) -> None:
    if seconds > MAX_SECONDS:
        raise BadAudio(f"{name}: {seconds:.1f} s is over Whisper's {MAX_SECONDS:.0f} s window")
    if seconds < MIN_SECONDS:
        raise BadAudio(f"{name}: {seconds:.3f} s is too short to carry speech (under {MIN_SECONDS} s)")


def decode(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """WAV/FLAC/OGG bytes -> (float32 samples [frames, channels], rate). No FFmpeg.
    The header is checked first; at most the frames it declares are decoded."""
    info = check_header(data, name)
    try:
        import soundfile as sf

        samples, rate = sf.read(io.BytesIO(data), frames=info.frames, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt input
        raise BadAudio(f"{name}: cannot decode audio ({_why(e)})") from e
    return samples, rate


def _why(error: Exception) -> str:
    """libsndfile's reason, without the repr of the in-memory buffer soundfile was
    handed ("Error opening <_io.BytesIO object at 0x7f...>: ...")."""
    text = getattr(error, "error_string", None) or str(error)
    return re.sub(r"^Error opening <[^>]*>: ", "", text).strip() or type(error).__name__


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Down-mix to mono and resample to 16 kHz (soxr through librosa) when needed."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if rate != SAMPLE_RATE:
        import librosa

        mono = librosa.resample(mono, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_finite(samples: np.ndarray, name: str) -> None:
    """Empty or NaN/Inf input is refused before resampling would smear it."""
    if samples.size == 0:
        raise BadAudio(f"{name}: empty audio")
    if not np.all(np.isfinite(samples)):
        raise BadAudio(f"{name}: NaN or Inf samples")


def check(samples: np.ndarray, name: str) -> None:
    """Raise BadAudio for clips the seed would have fed in blindly."""
    check_finite(samples, name)
    _check_length(samples.shape[0] / SAMPLE_RATE, name)
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise BadAudio(f"{name}: silent audio (peak below {SILENCE_PEAK})")


def clipped_samples(samples: np.ndarray) -> int:
    """Frames of the source recording with a channel at full scale (before resampling,
    which rings around a clipped peak and hides it)."""
    at_full = np.abs(samples) >= FULL_SCALE
    return int(np.count_nonzero(at_full.any(axis=1) if at_full.ndim == 2 else at_full))


def prepare_clip(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """Bytes of any supported file -> (checked float32 mono 16 kHz samples, frames of
    the source at full scale)."""
    samples, rate = decode(data, name)
    check_finite(samples, name)
    clipped = clipped_samples(samples)
    mono = to_mono_16k(samples, rate)
    check(mono, name)
    return mono, clipped


def prepare(data: bytes, name: str) -> np.ndarray:
    """Bytes of any supported file -> checked float32 mono 16 kHz samples."""
    return prepare_clip(data, name)[0]


def load(path: str | os.PathLike) -> np.ndarray:
    """A workflow WAV -> checked float32 mono 16 kHz samples, errors naming the file."""
    return prepare(read_regular_file(path), str(path))


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono float32 -> 16-bit PCM WAV bytes, as the tutorial saves them
    (libsndfile saturates samples beyond full scale)."""
    buf = io.BytesIO()
    import soundfile as sf

    sf.write(buf, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()
