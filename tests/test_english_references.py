"""Which English reference a language's translations are scored against, decided from
the source: FLEURS' en_us text of the same sentence id, else the label model's, with why;
and the calibration report's flags for label decodes that ran away."""

from __future__ import annotations

import json

from whisper_mxq import atomic, calibration, data, heldout
from whisper_mxq.demo import fleurs_row, write_fleurs_rows

from reliability import tone, wav


def _shard(root, lang, split, rows):
    write_fleurs_rows(
        root / lang / split / "0000.parquet",
        [fleurs_row(lang, i - 1, text, wav(tone(1.0))) for i, text in rows],
    )


def _manifest(path, lang, ids):
    samples = [
        {"file": f"{lang}_{k:04d}.wav", "wav": f"x/{lang}_{k:04d}.wav", "fleurs_id": sid, "raw_transcription": "t"}
        for k, sid in enumerate(ids)
    ]
    atomic.write_json(path, {"languages": {lang: {"samples": samples, "skipped": []}}})
    return str(path)


def test_human_english_of_the_same_id_or_the_label_model_with_why(tmp_path):
    src = tmp_path / "fleurs"
    _shard(src, "en_us", "test", [(1, "The cat sleeps."), (2, "It rains."), (1, "The cat sleeps.")])
    manifests = [
        _manifest(tmp_path / "de.json", "de_de", [2, 1]),
        _manifest(tmp_path / "fr.json", "fr_fr", [1, 7]),  # id 7: no en_us row
        _manifest(tmp_path / "en.json", "en_us", [1]),  # English is not translated
    ]
    out = heldout.english_references(data.Source(str(src), "test"), manifests)
    assert out["languages"]["de_de"]["kind"] == "human"
    assert out["references"] == {"de_de_0000": "It rains.", "de_de_0001": "The cat sleeps."}
    fr = out["languages"]["fr_fr"]
    assert fr["kind"] == "label model"
    assert fr["why"] == "1 of 2 clips' sentence ids have no en_us text in split 'test' (fr_fr_0001)"
    assert "en_us" not in out["languages"]


def test_no_en_us_shards_or_an_audio_folder_say_why(tmp_path):
    src = tmp_path / "fleurs"
    _shard(src, "de_de", "test", [(1, "Die Katze schläft.")])
    manifests = [_manifest(tmp_path / "de.json", "de_de", [1])]
    out = heldout.english_references(data.Source(str(src), "test"), manifests)
    assert out["languages"]["de_de"]["kind"] == "label model"
    assert out["languages"]["de_de"]["why"].startswith("the source has no en_us text to take references from")
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "test.tsv").write_text("file\tlanguage\ttranscription\n")
    out = heldout.english_references(data.Source(str(folder), "test"), manifests)
    assert out["languages"]["de_de"]["why"] == "an audio folder's rows share no sentence ids across languages"


def test_runaway_label_decodes_are_kept_and_listed_in_the_calibration_report(tmp_path):
    manifest = _manifest(tmp_path / "m.json", "sv_se", [1, 2])
    summary = tmp_path / "s.json"
    entries = [
        {"sample": "sv_se_0000", "task": "transcribe", "task_type": "transcription_with_lang", "loop": None},
        {"sample": "sv_se_0001", "task": "transcribe", "task_type": "transcription_with_lang", "loop": "repeats"},
    ]
    summary.write_text(json.dumps({"samples": entries}))
    calib = {"metadata": [{"task_type": "transcription_with_lang"}] * 2}
    rep = calibration.write_report([manifest], calib, str(tmp_path / "r.json"), [str(summary)])
    sv = rep["languages"]["sv_se"]
    assert sv["used"] == 2 and rep["samples"] == 2  # kept
    assert sv["runaway_decodes"] == [{"sample": "sv_se_0001", "task": "transcription_with_lang", "reason": "repeats"}]
