"""Audio checks and conversion: decode, validate, resample to Whisper's 16 kHz mono."""

from __future__ import annotations

import io
import os

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000  # Whisper's input rate (whisper.audio.SAMPLE_RATE)
MAX_SECONDS = 30.0  # Whisper sees one 30 s window; longer clips would be cut silently
SILENCE_PEAK = 1e-4  # below this peak amplitude a clip carries no speech


class BadAudio(ValueError):
    """A clip that cannot serve as calibration data; the message says why."""


def decode(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """WAV/FLAC/OGG bytes -> (float32 samples [frames, channels], rate). No FFmpeg."""
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt input
        raise BadAudio(f"{name}: cannot decode audio ({e})") from e
    return samples, rate


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
    seconds = samples.shape[0] / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise BadAudio(f"{name}: {seconds:.1f} s is over Whisper's {MAX_SECONDS:.0f} s window")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise BadAudio(f"{name}: silent audio (peak below {SILENCE_PEAK})")


def prepare(data: bytes, name: str) -> np.ndarray:
    """Bytes of any supported file -> checked float32 mono 16 kHz samples."""
    samples, rate = decode(data, name)
    check_finite(samples, name)
    mono = to_mono_16k(samples, rate)
    check(mono, name)
    return mono


def load(path: str | os.PathLike) -> np.ndarray:
    """A workflow WAV -> checked float32 mono 16 kHz samples, errors naming the file."""
    with open(path, "rb") as f:
        return prepare(f.read(), str(path))


def wav_bytes(samples: np.ndarray) -> bytes:
    """16 kHz mono float32 -> 16-bit PCM WAV bytes, as the tutorial saves them."""
    buf = io.BytesIO()
    sf.write(buf, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()
