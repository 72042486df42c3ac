"""Step 2, encoder: mel features of each clip, and the list qbcompiler reads.

A clip's features are the feature extractor's `input_features` [1, n_mels, n_frames]
transposed to [1, n_frames, n_mels] float32, the layout the NPU encoder takes, saved as
`calibration/encoder/encoder_calib_{sample}.npy`; `whisper_encoder_cali.txt` lists their
absolute paths, one a line, in the order of the samples.
"""

from __future__ import annotations

import os

import numpy as np

from . import atomic, audio, layout


def feature_extractor(snapshot: str):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor.from_pretrained(snapshot, local_files_only=True)


def encoder_features(fe, samples: np.ndarray) -> np.ndarray:
    """16 kHz mono samples -> [1, n_frames, n_mels] float32, C-contiguous."""
    feats = fe(samples, sampling_rate=audio.SAMPLE_RATE, return_tensors="np").input_features
    return np.ascontiguousarray(feats.transpose(0, 2, 1), dtype=np.float32)


def check_npy(path: str, shape: tuple) -> None:
    """Header and size check without reading the data: catches truncated files. -1 in
    `shape` takes any length."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npy file ({e})") from e
    ok = (
        arr.dtype == np.float32
        and len(arr.shape) == len(shape)
        and all(want in (-1, got) for want, got in zip(shape, arr.shape))
    )
    if not ok:
        raise ValueError(f"{path}: {arr.dtype}{list(arr.shape)}, expected float32{list(shape)}")


def write_encoder_list(samples: list[str], out_txt: str, n_mels: int, n_frames: int) -> None:
    """The list qbcompiler reads: each sample's features as an absolute path, after a
    check that the file is there and whole."""
    npys = [layout.ENCODER_NPY.format(sample=s) for s in samples]
    for path in npys:
        check_npy(path, (1, n_frames, n_mels))
    atomic.write_text(out_txt, "".join(os.path.abspath(p) + "\n" for p in npys))


def read_encoder_list(list_path: str) -> list[str]:
    """The .npy paths of whisper_encoder_cali.txt, in order (blank lines skipped)."""
    with open(list_path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
