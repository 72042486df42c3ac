"""Files that would exhaust the machine: only regular files of bounded size are read,
and a header's rate, channels and length are checked before decoding or resampling.

Whatever could hang (a FIFO) runs in a child process with a timeout, so a regression
fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from whisper_mxq import audio, data, layout

import reliability
from conftest import OFFLINE, REPO, copy_run, snakemake
from reliability import tone, wav


@pytest.fixture(scope="session")
def finished_run(request) -> Path:
    return reliability.finished_run(request)


def with_rate(clip: bytes, rate: int) -> bytes:
    """A 16-bit mono WAV whose header claims another sample rate (and byte rate)."""
    out = bytearray(clip)
    out[24:28] = struct.pack("<I", rate)
    out[28:32] = struct.pack("<I", rate * 2)
    return bytes(out)


def run_child(code: str, timeout: float = 60, memory: int = 2_000_000_000) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with the package importable, at most `memory`
    bytes of address space, killed after `timeout` s (the test then fails)."""
    prelude = textwrap.dedent(f"""
        import resource, sys
        sys.path[:0] = [{str(REPO / "workflow")!r}, {str(REPO / "tests")!r}]
        resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
    """)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


# --- what a path may be -------------------------------------------------------------------
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "en_us_0000.wav"
    os.mkfifo(fifo)
    proc = run_child(
        f"""
        from whisper_mxq import audio
        try:
            audio.load({str(fifo)!r})
        except audio.BadAudio as e:
            print(e)
    """,
        timeout=30,
    )
    assert proc.stdout.strip() == f"{fifo}: a FIFO, not a regular file; only regular files are read", proc.stderr


@pytest.mark.parametrize("device, kind", [("/dev/zero", "a character device"), ("/dev/urandom", "a character device")])
def test_link_to_a_device_is_refused_before_reading(tmp_path, device, kind):
    if not os.path.exists(device):
        pytest.skip(f"{device} is not on this machine")
    link = tmp_path / "en_us_0000.wav"
    link.symlink_to(device)
    with pytest.raises(audio.BadAudio, match=f"{link}: {kind}, not a regular file"):
        audio.read_regular_file(link)


def test_folder_and_missing_file_are_refused(tmp_path):
    with pytest.raises(audio.BadAudio, match=f"{tmp_path}: a folder, not a regular file"):
        audio.read_regular_file(tmp_path)
    with pytest.raises(audio.BadAudio, match="no such file"):
        audio.read_regular_file(tmp_path / "gone.wav")


def test_oversized_file_is_refused_unread(tmp_path, monkeypatch):
    """A sparse file of MAX_FILE_BYTES + 1: refused from its size, never opened."""
    big = tmp_path / "big.wav"
    with open(big, "wb") as f:
        f.truncate(audio.MAX_FILE_BYTES + 1)

    def no_open(*args, **kwargs):
        raise AssertionError("opened a file its size had already ruled out")

    monkeypatch.setattr(audio.os, "open", no_open)
    with pytest.raises(audio.BadAudio) as caught:
        audio.load(big)
    assert str(caught.value) == (
        f"{big}: {audio.MAX_FILE_BYTES + 1} bytes, over the {audio.MAX_FILE_BYTES} an audio clip may have"
    )


def test_clip_checker_refuses_a_fifo_put_in_place_of_a_downloaded_clip(tmp_path):
    """The calibrate and label jobs read clips through the manifest's checker: a FIFO
    swapped in after download fails naming the file, at once."""
    wav_path = tmp_path / "en_us_0000.wav"
    wav_path.write_bytes(wav(tone(1.0)))
    manifest = {"languages": {"en_us": {"samples": [{"wav": str(wav_path), "sha256": "x"}]}}}
    wav_path.unlink()
    os.mkfifo(wav_path)
    proc = run_child(
        f"""
        from whisper_mxq import audio, data
        try:
            data.clip_checker({manifest!r})({str(wav_path)!r})
        except audio.BadAudio as e:
            print(e)
    """,
        timeout=30,
    )
    assert proc.stdout.strip().startswith(f"{wav_path}: a FIFO, not a regular file"), proc.stderr


def test_fifo_in_place_of_a_local_shard_fails_naming_it(tmp_path):
    shard = tmp_path / "fleurs" / "en_us" / "validation" / "0000.parquet"
    shard.parent.mkdir(parents=True)
    os.mkfifo(shard)
    proc = run_child(
        f"""
        from whisper_mxq import data
        try:
            list(data.stream_rows(data.Source({str(tmp_path / "fleurs")!r}), "en_us"))
        except ValueError as e:
            print(e)
    """,
        timeout=30,
    )
    assert proc.stdout.strip() == f"language 'en_us': {shard}: a FIFO, not a regular file; only regular files are read"


# --- what a header may claim ----------------------------------------------------------------
@pytest.mark.parametrize("rate", [1, 100, 3_999, 384_001, 2_000_000_000])
def test_absurd_sample_rate_in_the_header_is_skipped_before_decoding(rate):
    """Rates no speech recording has, refused from the header: the child runs with 1 GB
    of address space, which resampling from such a rate would exceed."""
    clip = with_rate(wav(tone(1.0)), rate)
    proc = run_child(
        f"""
        from whisper_mxq import audio
        try:
            audio.prepare({clip!r}, "clip")
            print("accepted")
        except audio.BadAudio as e:
            print(e)
    """,
        memory=1_000_000_000,
    )
    assert proc.stdout.strip() == f"clip: sample rate {rate} Hz in its header is outside 4000..384000 Hz", proc.stderr


@pytest.mark.parametrize("rate", [4_000, 384_000])
def test_rates_at_the_bounds_are_kept(rate):
    frames = rate // 2  # 0.5 s at that rate
    out = audio.prepare(wav(tone(frames / rate, rate), rate), "clip")
    assert abs(out.shape[0] - audio.SAMPLE_RATE // 2) <= 1


def test_length_is_judged_from_the_header_before_decoding(monkeypatch):
    """A clip over 30 s is refused from its header: sf.read is never called."""

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded a clip its header had already ruled out")

    import soundfile

    monkeypatch.setattr(soundfile, "read", no_decode)  # audio imports it where it reads
    with pytest.raises(audio.BadAudio, match="31.0 s is over Whisper's 30 s window"):
        audio.prepare(wav(tone(31.0)), "clip")
    with pytest.raises(audio.BadAudio, match="too short to carry speech"):
        audio.prepare(wav(tone(0.05)), "clip")


def test_data_chunk_claiming_gigabytes_decodes_only_what_is_there():
    """A header whose data chunk claims 2 GB: libsndfile counts the frames the file
    holds, and only those are decoded (in a child with 1 GB of address space)."""
    clip = bytearray(wav(tone(1.0)))
    assert clip[36:40] == b"data"
    clip[40:44] = struct.pack("<I", 0x7FFFFFF0)
    proc = run_child(
        f"""
        from whisper_mxq import audio
        print(audio.prepare({bytes(clip)!r}, "clip").shape[0])
    """,
        memory=1_000_000_000,
    )
    assert proc.stdout.strip() == "16000", proc.stderr


def test_too_many_channels_are_refused_from_the_header():
    clip = wav(np.zeros((16_000, audio.MAX_CHANNELS + 1), np.float32) + 0.1)
    with pytest.raises(audio.BadAudio, match=f"{audio.MAX_CHANNELS + 1} channels in its header"):
        audio.prepare(clip, "clip")


def test_source_row_over_the_size_bound_is_skipped(tmp_path, monkeypatch):
    """FLEURS rows carry their audio as bytes: too many bytes are refused before any
    header is parsed, as a skip with its reason."""
    from whisper_mxq.demo import fleurs_row, write_fleurs_rows

    root = tmp_path / "fleurs"
    big, small = wav(tone(2.0)), wav(tone(0.5))
    write_fleurs_rows(
        root / "en_us" / "validation" / "0000.parquet",
        [fleurs_row("en_us", 0, "a", big), fleurs_row("en_us", 1, "b", small)],
    )
    monkeypatch.setattr(audio, "MAX_FILE_BYTES", len(small) + 1)
    wavs = [str(tmp_path / layout.AUDIO.format(sample="en_us_0000"))]
    out = data.download_job(
        data.Source(str(root)),
        [data.Part("en_us", 1)],
        wavs,
        str(tmp_path / "m.json"),
        str(tmp_path / "s.json"),
        max_skipped_fraction=1.0,
    )
    (skip,) = out["languages"]["en_us"]["skipped"]
    assert (
        skip["reason"]
        == f"en_us FLEURS id 1 (en_us_0000.wav): {len(big)} bytes, over the {len(small) + 1} an audio clip may have"
    )


# --- through the workflow ------------------------------------------------------------------
@pytest.mark.slow
def test_fifo_in_a_finished_run_fails_its_job_and_snakemake_ends(finished_run, tmp_path):
    """A clip replaced by a FIFO after download: the calibrate job reading it fails at
    once naming the file, and Snakemake ends (no hang, no memory blow-up)."""
    work = copy_run(finished_run, tmp_path / "work")
    clip = work / layout.AUDIO.format(sample="en_us_0000")
    clip.unlink()
    os.mkfifo(clip)
    # One of its job's outputs gone: that job runs again (and reads the FIFO).
    (work / layout.ENCODER_NPY.format(sample="en_us_0000")).unlink()
    proc = snakemake(work, "-j2", "--keep-going", "calibration", "--configfile", str(OFFLINE), check=False, timeout=600)
    assert proc.returncode != 0
    logs = [p for p in (work / "logs" / "calibrate").glob("*.log") if "a FIFO, not a regular file" in p.read_text()]
    assert len(logs) == 1 and layout.AUDIO.format(sample="en_us_0000") in logs[0].read_text()
