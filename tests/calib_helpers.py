"""Test-only drivers of the calibration steps: encoder and decoder files on their own,
and a download job's manifest for clips written by a test (no FLEURS shard)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from whisper_mxq import atomic, calibration, data, encoder_calibration, layout


def calib_settings(**overrides) -> calibration.Settings:
    """Calibration settings for tests: small decodes on the CPU, any field overridden."""
    base = dict(seed=0, translate_ratio=0.2, max_new_tokens=12, batch_size="auto", normalize_text=False, dtype="auto")
    return calibration.Settings(**{**base, **overrides})


def calibrate_encoder(snapshot: str, wavs: list[str], npys: list[str]) -> None:
    """Encoder features of each clip (a calibrate job makes them together with the
    decoder files)."""
    fe = encoder_calibration.feature_extractor(snapshot)
    for wav, npy in zip(wavs, npys, strict=True):
        feats = encoder_calibration.encoder_features(fe, data.audio.load(wav))
        atomic.write_npy(npy, feats)


def calibrate_decoder(
    snapshot: str,
    samples: list[str],
    encoder_npys: list[str],
    out_dirs: list[str],
    settings: calibration.Settings,
    device: str = "cpu",
    threads: int = 2,
) -> list[dict]:
    """Decoder files from saved encoder features; each sample's summary entry is also
    written as `tokens.json` in its folder, so runs can be compared file by file."""
    entries = calibration._calibrate(
        snapshot, samples, out_dirs, settings, device, threads, lambda i: atomic.read_npy(encoder_npys[i])
    )
    for out_dir, entry in zip(out_dirs, entries, strict=True):
        atomic.write_json(os.path.join(out_dir, "tokens.json"), entry)
    return entries


def manifest_for(wavs: list[str], root: Path, job: str = "000") -> tuple[str, str]:
    """A download job's manifest and stamp for clips already on disk, as download_job
    writes them; languages from the file names. Returns (manifest, stamp)."""
    languages: dict[str, dict] = {}
    for wav in wavs:
        name = os.path.basename(wav)
        lang = layout.sample_lang(name.removesuffix(".wav"))
        part = languages.setdefault(
            lang, {"whisper_language": "", "first_row": 0, "next_row": 0, "samples": [], "skipped": []}
        )
        part["samples"].append(
            {
                "file": name,
                "wav": wav,
                "fleurs_id": len(part["samples"]),
                "fleurs_path": name,
                "row": len(part["samples"]),
                "transcription": "",
                "raw_transcription": "",
                "duration_s": 0.0,
                "sha256": hashlib.sha256(Path(wav).read_bytes()).hexdigest(),
            }
        )
    manifest = str(root / layout.MANIFEST.format(job=job))
    stamp = str(root / layout.DOWNLOAD_STAMP.format(job=job))
    atomic.write_json(manifest, {"source": "test", "languages": languages})
    atomic.write_json(stamp, {"manifest_sha256": data.file_sha256(manifest), "next_row": {}})
    return manifest, stamp


def greedy_once(
    model, states, prompt_ids: list[int], max_new_tokens: int, graphs: bool | None = None
) -> list[list[int]]:
    """decoding.Greedy for one batch with one prompt: the generated ids of each row
    (prompt not included), rows that end early filled with end-of-text."""
    from whisper_mxq import decoding

    return decoding.Greedy(model, max_new_tokens, graphs)(states, [prompt_ids] * states.shape[0])
