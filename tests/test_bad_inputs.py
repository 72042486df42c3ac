"""Bad inputs: each is a clear error naming the thing, or a skip recorded with its reason.

| input | where | outcome |
| --- | --- | --- |
| undecodable WAV bytes | download | skipped: "cannot decode audio" |
| zero-length clip (0 bytes, or a WAV with 0 frames) | download | skipped: "no audio bytes in the row" / "empty audio" |
| all-zero (silent) clip | download | skipped: "silent audio" |
| clip over 30 s | download | skipped: "over Whisper's 30 s window" |
| NaN/Inf samples | download | skipped: "NaN or Inf samples" |
| stereo and/or 48 kHz clip | download | kept: down-mixed to mono, resampled to 16 kHz |
| more than data.max_skipped_fraction of the clips read skipped | download | error naming the language and the key |
| FLEURS shard missing a column | download | error naming the language and the column |
| unknown language code | config check / download | error naming `languages` / the code |
| `../` or `/` in a language code | config check | error naming `languages` |
| `../` or `/` in a FLEURS id or path | download | stored as data only; file names come from layout |
| model folder without processor files | snapshot | error naming `model` and the processor |
| truncated `.npy` in calibration/ | decoder calibration, lists | error naming the file |
| WAV under data/audio_files replaced by a bad one | calibration | error naming the file |
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import reliability
from conftest import OFFLINE, copy_run, snakemake
from reliability import tone, wav
from whisper_mxq import atomic, audio, calibration, data, layout, models, report
from whisper_mxq.demo import fleurs_row, write_fleurs_rows


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


@pytest.mark.parametrize("channels, rate", [(2, 16_000), (1, 48_000), (2, 48_000)])
def test_stereo_or_48k_is_converted_not_skipped(channels, rate):
    out = audio.prepare(wav(tone(2.0, rate, channels), rate), "clip")
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.shape[0] - 2 * audio.SAMPLE_RATE) <= 1
    assert 0.2 < float(np.abs(out).max()) < 0.4


def _shard(root: Path, lang: str, clips: list[bytes]) -> Path:
    rows = [fleurs_row(lang, i, f"sentence {i}", clip) for i, clip in enumerate(clips)]
    write_fleurs_rows(root / lang / "validation" / "0000.parquet", rows)
    return root


def _download(root: Path, work: Path, lang: str, n: int, **kwargs) -> dict:
    wavs = [str(work / layout.AUDIO.format(sample=layout.sample_id(lang, i))) for i in range(n)]
    manifest = str(work / layout.MANIFEST.format(lang=lang))
    return data.download(data.Source(str(root)), lang, wavs, manifest, **kwargs)


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
    on_disk = atomic.read_json(tmp_path / layout.MANIFEST.format(lang="en_us"))
    assert on_disk["skipped"] == manifest["skipped"]
    summary = report.write_calibration_report(
        [str(tmp_path / layout.MANIFEST.format(lang="en_us"))],
        {"metadata": []},
        str(tmp_path / layout.CALIBRATION_REPORT),
    )
    assert summary["languages"]["en_us"]["skipped"] == manifest["skipped"]


def test_too_many_skips_fail_the_language_naming_it(tmp_path):
    bad = [BAD_CLIPS["silent"][0]] * 3
    root = _shard(tmp_path / "fleurs", "de_de", bad + [wav(tone(1.0))] * 2)
    # 3 of 5 clips read were skipped: over the default 0.5 ...
    with pytest.raises(ValueError, match=r"language 'de_de': 3 of 5 clips read were skipped") as e:
        _download(root, tmp_path, "de_de", 2)
    assert "data.max_skipped_fraction" in str(e.value) and "silent audio" in str(e.value)
    assert not (tmp_path / layout.MANIFEST.format(lang="de_de")).exists()
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
    with pytest.raises(ValueError, match=r"language 'en_us'.*lack columns \['transcription'\]"):
        _download(tmp_path / "fleurs", tmp_path, "en_us", 1)


def test_unknown_language_fails_before_reading(tmp_path):
    with pytest.raises(ValueError, match="xx_yy"):
        _download(tmp_path / "nowhere", tmp_path, "xx_yy", 1)


def test_language_with_no_shards_fails_naming_it(tmp_path):
    (tmp_path / "fleurs").mkdir()
    with pytest.raises(ValueError, match="language 'de_de': cannot read FLEURS 'validation' shards"):
        _download(tmp_path / "fleurs", tmp_path, "de_de", 1)


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
        "data/manifests/en_us.json",
    ]
    assert not list(tmp_path.rglob("escaped.wav"))


def test_model_folder_without_processor_fails_naming_it(finished_run, tmp_path):
    model = tmp_path / "whisper-no-processor"
    shutil.copytree(finished_run / "models" / "whisper-tiny-random", model)
    for f in model.iterdir():
        if f.name not in ("config.json", "generation_config.json", "model.safetensors"):
            f.unlink()
    with pytest.raises(ValueError, match=r"config key 'model'.*no usable Whisper processor"):
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
        lambda: calibration.check_npy(str(npy), (1, 1500, 64)),
        lambda: calibration.write_encoder_list([str(npy)], str(tmp_path / "list.txt"), 64, 1500),
    ):
        with pytest.raises(ValueError, match=f"{npy}: not a readable .npy file"):
            read()
    assert not (tmp_path / "list.txt").exists()


@pytest.mark.slow
def test_bad_files_in_a_finished_run_fail_their_jobs_naming_them(finished_run, tmp_path):
    """After download: a user swaps en_us_0000.wav for a silent clip, and an encoder
    calibration .npy gets truncated. Each run fails the job reading the bad file, naming
    it; with --keep-going the rest still runs, and no list is written from bad files."""
    work = copy_run(finished_run, tmp_path / "work")
    bad_wav = layout.AUDIO.format(sample="en_us_0000")
    good_wav = (work / bad_wav).read_bytes()
    (work / bad_wav).write_bytes(wav(SILENT))
    bad_npy = layout.ENCODER_NPY.format(sample="de_de_0003")
    npy = work / bad_npy
    npy.write_bytes(npy.read_bytes()[:200])
    encoder_list = (work / layout.ENCODER_LIST).read_text()

    def run():
        return snakemake(work, "-j2", "--keep-going", "calibration", "--configfile", str(OFFLINE),
                         check=False)

    proc = run()
    assert proc.returncode != 0
    failed = [p for p in (work / "logs" / "calibrate").glob("*.log") if f"{bad_wav}: silent audio" in p.read_text()]
    assert len(failed) == 1, "one calibrate job holds en_us_0000 and names the bad WAV"
    assert f"calibrate_{failed[0].stem}" in proc.stdout + proc.stderr
    # With the WAV mended, the list that reads every features file meets the truncated one.
    (work / bad_wav).write_bytes(good_wav)
    proc = run()
    assert proc.returncode != 0
    log = (work / "logs" / "encoder_list.log").read_text()
    assert f"{bad_npy}: not a readable .npy file" in log
    assert "encoder_list" in proc.stdout + proc.stderr
    # The lists were never rewritten from bad inputs: Snakemake removed the stale ones
    # as outputs of jobs that could not run, or they are still the old complete ones.
    lst = work / layout.ENCODER_LIST
    assert not lst.exists() or lst.read_text() == encoder_list
    assert json.loads((work / layout.CALIBRATION_REPORT).read_text())  # still complete JSON
