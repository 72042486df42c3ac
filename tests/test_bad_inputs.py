"""Bad inputs: each is a clear error naming the thing, or a skip recorded with its reason.

The README's bad-input table lists every case; tests/test_hostile_files.py has the files
that would exhaust the machine, tests/test_model_check.py the model folders,
tests/test_own_audio.py the audio-folder source.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from whisper_mxq import atomic, audio, calibration, data, demo, encoder_calibration, layout, models
from whisper_mxq.demo import fleurs_row, write_fleurs_rows

import reliability
from conftest import OFFLINE, copy_run, snakemake
from reliability import tone, wav


@pytest.fixture(scope="session")
def finished_run(request) -> Path:
    return reliability.finished_run(request)


SILENT = np.zeros(16_000, np.float32)
NAN = tone(1.0)
NAN[100] = np.nan
INF = tone(1.0)
INF[5] = np.inf
BAD_CLIPS = {  # name -> (bytes, the reason recorded)
    "garbage": (b"RIFF\x00\x00not a wav at all", "cannot decode audio"),
    "zero bytes": (b"", "cannot decode audio"),
    "zero frames": (wav(np.zeros(0, np.float32)), "empty audio"),
    "five samples": (wav(tone(1.0)[:5]), "too short to carry speech"),
    "silent": (wav(SILENT), "silent audio"),
    "31 s": (wav(tone(31.0)), "over Whisper's 30 s window"),
    "NaN": (wav(NAN, subtype="FLOAT"), "NaN or Inf samples"),
    "Inf": (wav(INF, subtype="FLOAT"), "NaN or Inf samples"),
}


@pytest.mark.parametrize("name", BAD_CLIPS)
def test_bad_clip_is_refused_with_its_reason(name):
    data_bytes, reason = BAD_CLIPS[name]
    with pytest.raises(audio.BadAudio, match=reason) as caught:
        audio.prepare(data_bytes, f"clip {name}")
    assert str(caught.value).startswith(f"clip {name}: ")


@pytest.mark.parametrize("name", BAD_CLIPS)
def test_skip_reasons_read_as_sentences_not_python_objects(name):
    """soundfile names the in-memory buffer it was handed ("<_io.BytesIO object at 0x...>")."""
    with pytest.raises(audio.BadAudio) as caught:
        audio.prepare(BAD_CLIPS[name][0], f"clip {name}")
    assert not re.search(r"<\w|object at 0x", str(caught.value)), str(caught.value)
    if name == "garbage":
        assert str(caught.value) == "clip garbage: cannot decode audio (Format not recognised.)"


@pytest.mark.parametrize("channels, rate", [(2, 16_000), (1, 48_000), (2, 48_000), (1, 8_000)])
def test_stereo_or_other_rates_are_converted_not_skipped(channels, rate):
    out = audio.prepare(wav(tone(2.0, rate, channels), rate), "clip")
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.shape[0] - 2 * audio.SAMPLE_RATE) <= 1
    assert 0.2 < float(np.abs(out).max()) < 0.4


def _shard(root: Path, lang: str, clips: list[bytes], texts: list | None = None) -> Path:
    rows = [fleurs_row(lang, i, f"sentence {i}", clip) for i, clip in enumerate(clips)]
    for row, text in zip(rows, texts or []):
        row["transcription"] = row["raw_transcription"] = text
    write_fleurs_rows(root / lang / "validation" / "0000.parquet", rows)
    return root


def _download(root: Path, work: Path, lang: str, n: int, max_skipped_fraction: float = 0.5) -> dict:
    """One download job of `n` clips of `lang` (the schema's skip threshold unless given);
    its manifest's entry for the language."""
    wavs = [str(work / layout.AUDIO.format(sample=layout.sample_id(lang, i))) for i in range(n)]
    manifest = str(work / layout.MANIFEST.format(job="000"))
    stamp = str(work / layout.DOWNLOAD_STAMP.format(job="000"))
    out = data.download_job(data.Source(str(root)), [data.Part(lang, n)], wavs, manifest, stamp, max_skipped_fraction)
    return out["languages"][lang]


def test_download_skips_bad_clips_with_reasons_into_manifest_and_report(tmp_path):
    """Every bad kind in one shard, good clips after them (one stereo 48 kHz): the good
    ones fill the language, each bad one is in the manifest and the report with its reason."""
    clips = [c for c, _ in BAD_CLIPS.values()]
    good = [wav(tone(1.0)), wav(tone(1.5, 48_000, 2), 48_000)]
    root = _shard(tmp_path / "fleurs", "en_us", clips + good)
    manifest = _download(root, tmp_path, "en_us", 2, max_skipped_fraction=1.0)
    assert [s["fleurs_id"] for s in manifest["samples"]] == [len(clips) + 1, len(clips) + 2]
    assert manifest["samples"][1]["duration_s"] == 1.5  # the stereo 48 kHz clip, converted
    reasons = [s["reason"] for s in manifest["skipped"]]
    assert len(reasons) == len(clips)
    # An empty audio value never reaches the decoder: the row itself is refused.
    expected = {**{k: r for k, (_, r) in BAD_CLIPS.items()}, "zero bytes": "no audio bytes in the row"}
    for reason, want in zip(reasons, expected.values()):
        assert want in reason and "en_us FLEURS id" in reason
    on_disk = atomic.read_json(tmp_path / layout.MANIFEST.format(job="000"))
    assert on_disk["languages"]["en_us"]["skipped"] == manifest["skipped"]
    summary = calibration.write_report(
        [str(tmp_path / layout.MANIFEST.format(job="000"))],
        {"metadata": []},
        str(tmp_path / layout.CALIBRATION_REPORT),
    )
    assert summary["languages"]["en_us"]["skipped"] == manifest["skipped"]


def test_clipped_clips_are_kept_and_counted(tmp_path):
    """Samples at full scale are recorded per clip (frames of the source at full scale,
    counted here independently) and per language; the clip itself is kept."""
    loud = np.clip(tone(1.0) * 4, -1.0, 1.0)  # a 0.3 tone driven 4x into the rails
    stereo = np.stack([tone(1.0), loud], axis=1)  # one clipped channel clips the frame
    root = _shard(tmp_path / "fleurs", "en_us", [wav(tone(1.0)), wav(loud), wav(stereo)])
    manifest = _download(root, tmp_path, "en_us", 3)
    pcm = np.round(loud * 32767) / 32768  # what the 16-bit WAV holds
    expected = int(np.count_nonzero(np.abs(pcm) >= audio.FULL_SCALE))
    assert expected > 1000
    assert [s["clipped_samples"] for s in manifest["samples"]] == [0, expected, expected]
    assert manifest["clipped_clips"] == 2 and manifest["skipped"] == []


def test_too_many_skips_fail_the_language_naming_it(tmp_path):
    bad = [BAD_CLIPS["silent"][0]] * 3
    root = _shard(tmp_path / "fleurs", "de_de", bad + [wav(tone(1.0))] * 2)
    # 3 of 5 clips read were skipped: over the default 0.5 ...
    with pytest.raises(ValueError, match=r"language 'de_de': 3 of 5 clips read were skipped") as e:
        _download(root, tmp_path, "de_de", 2)
    assert "data.max_skipped_fraction" in str(e.value) and "silent audio" in str(e.value)
    assert not (tmp_path / layout.MANIFEST.format(job="000")).exists()
    # ... and within a looser threshold.
    assert len(_download(root, tmp_path, "de_de", 2, max_skipped_fraction=0.6)["skipped"]) == 3


def test_too_few_usable_clips_fail_the_language_naming_it(tmp_path):
    root = _shard(tmp_path / "fleurs", "fr_fr", [BAD_CLIPS["garbage"][0], wav(tone(1.0))])
    with pytest.raises(ValueError, match=r"language 'fr_fr': only 1 usable clips of the 3"):
        _download(root, tmp_path, "fr_fr", 3, max_skipped_fraction=1.0)


def test_shard_missing_a_column_fails_naming_it(tmp_path):
    import datasets

    rows = [fleurs_row("en_us", 0, "hello", wav(tone(1.0)))]
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "transcription"}
    columns["audio"] = [{"bytes": r["audio"], "path": r["path"]} for r in rows]
    shard = tmp_path / "fleurs" / "en_us" / "validation" / "0000.parquet"
    shard.parent.mkdir(parents=True)
    datasets.Dataset.from_dict(columns).to_parquet(str(shard))
    with pytest.raises(ValueError, match=r"language 'en_us'.*lack columns \['transcription'\]") as e:
        _download(tmp_path / "fleurs", tmp_path, "en_us", 1)
    assert str(shard) in str(e.value)


def test_unknown_language_fails_before_reading(tmp_path):
    with pytest.raises(ValueError, match="xx_yy"):
        _download(tmp_path / "nowhere", tmp_path, "xx_yy", 1)


def test_language_with_no_shards_fails_naming_it(tmp_path):
    (tmp_path / "fleurs").mkdir()
    with pytest.raises(ValueError, match="language 'de_de': cannot read FLEURS 'validation' shards") as e:
        _download(tmp_path / "fleurs", tmp_path, "de_de", 1)
    assert str(tmp_path / "fleurs") in str(e.value)


def test_path_like_fleurs_ids_stay_data(tmp_path):
    """`../` or `/` in a FLEURS row's id or path never reaches a file name."""
    row = fleurs_row("en_us", 0, "hello", wav(tone(1.0)))
    row["path"] = "../../../escaped.wav"
    root = tmp_path / "fleurs"
    write_fleurs_rows(root / "en_us" / "validation" / "0000.parquet", [row])
    work = tmp_path / "work"
    manifest = _download(root, work, "en_us", 1)
    assert manifest["samples"][0]["fleurs_path"] == "../../../escaped.wav"
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file()) == [
        "data/audio_files/en_us_0000.wav",
        "data/manifests/000.json",
        "data/manifests/000.stamp.json",
    ]
    assert not list(tmp_path.rglob("escaped.wav"))


# --- odd but legal data ----------------------------------------------------------------
def _empty_shards(folder: Path, schema: pa.Schema) -> list[Path]:
    """Zero-row shards as pyarrow writes them: one empty row group (the kind that crashed
    the reader), one with FLEURS' schema but no metadata, one with no columns at all."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = [folder / "0000.parquet", folder / "0001.parquet", folder / "0002.parquet"]
    pq.write_table(schema.empty_table(), shards[0])
    pq.write_table(schema.remove_metadata().empty_table(), shards[1])
    pq.write_table(pa.table({}), shards[2])
    return shards


def test_zero_row_shards_read_as_empty(tmp_path):
    """Zero-row shards before, between and as the only shards of a language: read as
    empty, not a crash inside pyarrow (and so no retry loop)."""
    root = tmp_path / "fleurs"
    good = root / "en_us" / "validation" / "0003.parquet"
    write_fleurs_rows(good, [fleurs_row("en_us", i, f"s {i}", wav(tone(1.0))) for i in range(2)])
    shards = _empty_shards(good.parent, pq.read_schema(good))
    assert pq.ParquetFile(shards[0]).metadata.num_row_groups == 1  # the crashing shape
    assert [r["id"] for r in data.stream_rows(data.Source(str(root)), "en_us")] == [1, 2]
    assert len(_download(root, tmp_path, "en_us", 2)["samples"]) == 2
    _empty_shards(root / "de_de" / "validation", pq.read_schema(good))
    assert list(data.stream_rows(data.Source(str(root)), "de_de")) == []
    with pytest.raises(ValueError, match=r"language 'de_de': only 0 usable clips of the 1 .* 0 skipped"):
        _download(root, tmp_path / "de", "de_de", 1)


def test_corrupt_shard_fails_naming_it(tmp_path):
    shard = tmp_path / "fleurs" / "en_us" / "validation" / "0000.parquet"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"")
    with pytest.raises(ValueError, match=f"cannot read FLEURS shard {shard}"):
        _download(tmp_path / "fleurs", tmp_path, "en_us", 1)


@pytest.mark.parametrize("text", [None, ""])
def test_null_or_empty_transcription_is_kept_as_data(tmp_path, text):
    """FLEURS rows without a transcription still calibrate (the labels come from the label
    model); the manifest keeps the missing text as it is, strict JSON."""
    root = _shard(tmp_path / "fleurs", "en_us", [wav(tone(1.0)), wav(tone(1.2))], texts=[text, "hello"])
    manifest = _download(root, tmp_path, "en_us", 2)
    assert [s["raw_transcription"] for s in manifest["samples"]] == [text, "hello"]
    json.loads((tmp_path / layout.MANIFEST.format(job="000")).read_text())


@pytest.mark.parametrize(
    "value, where", [(float("nan"), "languages.en_us.wer"), (float("inf"), "clips.1"), (float("-inf"), "x")]
)
def test_json_writers_refuse_nan_and_inf_naming_the_key(tmp_path, value, where):
    obj = (
        {"languages": {"en_us": {"wer": value}}}
        if where.startswith("languages")
        else ({"clips": [0.5, value]} if where.startswith("clips") else {"x": value})
    )
    out = tmp_path / "report.json"
    with pytest.raises(ValueError, match=f"cannot write {out}: {where} is not finite"):
        atomic.write_json(out, obj)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    atomic.write_json(out, {"wer": None})  # None is how the writers say "no value"
    assert json.loads(out.read_text()) == {"wer": None}


def test_model_folder_without_processor_fails_naming_it(tmp_path):
    model = tmp_path / "whisper-no-processor"
    demo.build_tiny_model(model)
    for f in model.iterdir():
        if f.name not in ("config.json", "generation_config.json", "model.safetensors"):
            f.unlink()
    with pytest.raises(ValueError, match=r"config key 'model'.*no tokenizer"):
        models.snapshot_model(str(model), str(tmp_path / "models" / "x"))
    assert not (tmp_path / "models" / "x").exists()
    with pytest.raises(ValueError, match=f"{model}: no usable Whisper processor"):
        models.load_processor(str(model))


def test_truncated_npy_fails_naming_it(tmp_path):
    npy = tmp_path / "calibration" / "decoder" / "sample_en_us_0000" / "encoder_hidden_states.npy"
    atomic.write_npy(npy, np.ones((1, 1500, 64), np.float32))
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
    for read in (
        lambda: atomic.read_npy(npy),
        lambda: encoder_calibration.check_npy(str(npy), (1, 1500, 64)),
    ):
        with pytest.raises(ValueError, match=f"{npy}: not a readable .npy file"):
            read()


@pytest.mark.slow
def test_bad_files_in_a_finished_run_fail_their_jobs_naming_them(finished_run, tmp_path):
    """After download: a user swaps en_us_0000.wav for a silent clip, and an encoder
    calibration .npy gets truncated. Each run fails the job reading the bad file, naming
    it; with --keep-going the rest still runs, and no list is written from bad files."""
    work = copy_run(finished_run, tmp_path / "work")
    bad_wav = layout.AUDIO.format(sample="en_us_0000")
    good_wav = (work / bad_wav).read_bytes()
    (work / bad_wav).write_bytes(wav(SILENT))
    # One of its job's outputs gone: that job runs again (and reads the swapped clip).
    (work / layout.ENCODER_NPY.format(sample="en_us_0000")).unlink()
    encoder_list = (work / layout.ENCODER_LIST).read_text()

    def run():
        return snakemake(work, "-j2", "--keep-going", "calibration", "--configfile", str(OFFLINE), check=False)

    proc = run()
    assert proc.returncode != 0
    failed = [
        p for p in (work / "logs" / "calibrate").glob("*.log") if f"{bad_wav}: not the clip downloaded" in p.read_text()
    ]
    assert len(failed) == 1, "one calibrate job holds en_us_0000 and names the changed WAV"
    assert f"calibrate_{failed[0].stem}" in proc.stdout + proc.stderr
    lst = work / layout.ENCODER_LIST
    assert not lst.exists() or lst.read_text() == encoder_list
    # With the WAV mended, a truncated features file fails the list that reads it.
    (work / bad_wav).write_bytes(good_wav)
    assert run().returncode == 0
    bad_npy = layout.ENCODER_NPY.format(sample="de_de_0003")
    npy = work / bad_npy
    npy.write_bytes(npy.read_bytes()[:200])
    (work / layout.ENCODER_LIST).unlink()
    proc = run()
    assert proc.returncode != 0
    log = (work / "logs" / "encoder_list.log").read_text()
    assert f"{bad_npy}: not a readable .npy file" in log
    assert not (work / layout.ENCODER_LIST).exists()
    assert json.loads((work / layout.CALIBRATION_REPORT).read_text())  # still complete JSON


def test_a_job_of_several_languages_keeps_its_sample_order(tmp_path):
    """A job holding de_de after en_us: its manifest, read back from disk (written with
    sorted keys), lists en_us's clips first, as the job's outputs are ordered."""
    root = _shard(tmp_path / "fleurs", "en_us", [wav(tone(1.0))])
    _shard(root, "de_de", [wav(tone(1.0))])
    wavs = [str(tmp_path / layout.AUDIO.format(sample=s)) for s in ("en_us_0000", "de_de_0000")]
    manifest, stamp = str(tmp_path / "m.json"), str(tmp_path / "s.json")
    data.download_job(
        data.Source(str(root)), [data.Part("en_us", 1), data.Part("de_de", 1)], wavs, manifest, stamp, 0.5
    )
    on_disk = data.read_manifest(stamp, manifest)
    assert list(on_disk["languages"]) == ["de_de", "en_us"]  # sorted by the writer
    assert [s["wav"] for s in data.manifest_samples(on_disk)] == wavs


def test_remote_shards_are_read_through_fsspec(tmp_path, monkeypatch):
    """A Hub id's shards come through fsspec (`hf://`); the same code path, on fsspec's
    in-memory filesystem standing in for the Hub: name order, zero-row shards skipped."""
    import fsspec

    memory = fsspec.filesystem("memory")
    good = tmp_path / "0001.parquet"
    write_fleurs_rows(good, [fleurs_row("en_us", i, f"s {i}", wav(tone(1.0))) for i in range(2)])
    (empty,) = _empty_shards(tmp_path / "empty", pq.read_schema(good))[:1]
    memory.pipe("/hub/en_us/partial-validation/0001.parquet", good.read_bytes())
    memory.pipe("/hub/en_us/partial-validation/0000.parquet", empty.read_bytes())
    monkeypatch.setattr(data.Source, "data_files", lambda self, lang: f"memory://hub/{lang}/*{self.split}/*.parquet")
    source = data.Source("some-org/fleurs-like")
    assert not source.is_local()
    assert [r["id"] for r in data.stream_rows(source, "en_us")] == [1, 2]
    with pytest.raises(
        ValueError,
        match=r"language 'de_de': cannot read FLEURS 'validation' shards at "
        r"memory://hub/de_de/\*validation/\*.parquet \(no file matches\)",
    ):
        list(data.stream_rows(source, "de_de"))


def test_a_hub_id_resolves_to_the_hubs_filesystem():
    import fsspec

    files = data.Source("google/fleurs").data_files("en_us")
    assert files == "hf://datasets/google/fleurs@refs%2Fconvert%2Fparquet/en_us/*validation/*.parquet"
    fs, _ = fsspec.core.url_to_fs(files)  # no network: the filesystem object only
    assert type(fs).__name__ == "HfFileSystem"


def test_a_misspelled_key_is_named_with_its_file_and_the_closest_key_only(tmp_path):
    """One line a person reads, word for word; not the schema and config dumped after it."""
    bad = tmp_path / "mine.yaml"
    bad.write_text("samples_per_langauge: 5\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(bad), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (
        f"config key 'samples_per_langauge' (from {bad}) is not a setting of this workflow: did you mean "
        "samples_per_language? (every key and its meaning: workflow/schemas/config.schema.yaml)"
    ) in out
    assert len(out) < 1500 and "additionalProperties" not in out
    nested = snakemake(tmp_path, "-n", "--config", "quality={maxwer: 1}", check=False)
    assert "config key 'quality.maxwer' (from the command line (--config))" in nested.stdout + nested.stderr
