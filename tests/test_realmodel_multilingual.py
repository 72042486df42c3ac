"""The workflow end to end on OpenAI's trained multilingual whisper-base and speech in
eight languages (human Swedish and Japanese, espeak-ng elsewhere): the tutorial's
prompts per language and task, translations scored against human English references
(FLEURS' n-way parallel ids), per-language verdicts for both tasks, and decodes that
run away shown, not hidden in an average."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from realmodel import build, multilingual
from realmodel.fixtures import multilingual_dir  # noqa: F401

from conftest import snakemake


@pytest.fixture(scope="module")
def ml_run(multilingual_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("multilingual_run")
    config = multilingual_dir / build.CONFIG
    snakemake(work, "labels", "calibration", "quality", "-j2", "--configfile", str(config), timeout=2400)
    return work


def _report(run) -> dict:
    return json.loads((run / f"reports/{multilingual.MODEL_DIR}_quality.json").read_text())


def _fleurs_texts(folder, lang: str, split: str) -> dict[int, str]:
    import pyarrow.parquet as pq

    shard = folder / build.FLEURS_DIR / lang / split / "0000.parquet"
    table = pq.read_table(shard, columns=["id", "raw_transcription"])
    return dict(zip(table.column("id").to_pylist(), table.column("raw_transcription").to_pylist()))


@pytest.mark.slow
def test_calibration_prompts_are_whisper_s_for_every_language_and_task(ml_run):
    """Each decoder calibration sample starts with openai-whisper's own prompt for its
    language and task (ids from openai-whisper's tokenizer, not ours)."""
    from whisper.tokenizer import get_tokenizer

    calib = json.loads((ml_run / "calibration/decoder/whisper_decoder_calib.json").read_text())
    seen = set()
    for entry in calib["metadata"]:
        task = "translate" if entry["use_translation"] else "transcribe"
        tok = get_tokenizer(multilingual=True, language=entry["source_language"], task=task)
        assert entry["token_ids"][:4] == [*tok.sot_sequence, tok.no_timestamps], entry["decoded_tokens"][:80]
        assert entry["task_type"] == f"{'translation' if task == 'translate' else 'transcription'}_with_lang"
        seen.add((entry["source_language"], task))
    assert {lang for lang, _ in seen} == {"en", "de", "fr", "es", "it", "ru", "sv", "ja"}
    assert {task for _, task in seen} == {"transcribe", "translate"}


@pytest.mark.slow
def test_translations_are_scored_against_the_human_english_of_the_same_sentence(multilingual_dir, ml_run):
    english = json.loads((ml_run / "data/eval_english.json").read_text())
    en_texts = _fleurs_texts(multilingual_dir, "en_us", build.EVAL_SPLIT)
    folder = ml_run / "data/eval_manifests"
    manifests = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if ".stamp" not in p.name]
    ids = {
        s["file"].removesuffix(".wav"): s["fleurs_id"]
        for m in manifests
        for part in m["languages"].values()
        for s in part["samples"]
    }
    for lang in ("de_de", "fr_fr", "es_419", "it_it", "ru_ru", "sv_se"):
        assert english["languages"][lang]["kind"] == "human", lang
    for sample, text in english["references"].items():
        assert text == en_texts[ids[sample]]  # en_us's own row of that sentence id
    # one Japanese clip has no transcript and so no English: the label model's, with why
    ja = english["languages"]["ja_jp"]
    assert ja["kind"] == "label model" and "1 of 2 clips" in ja["why"]
    rep = _report(ml_run)
    assert rep["translation_reference"]["de_de"] == "human"
    assert rep["languages"]["de_de"]["verdicts"]["translate"]["reference"]["kind"] == "human"


@pytest.mark.slow
def test_report_gives_each_language_transcribe_and_translate_verdicts(ml_run):
    rep = _report(ml_run)
    assert set(rep["languages"]) == set(multilingual.LANGUAGES)
    for lang, row in rep["languages"].items():
        tasks = {"transcribe"} if lang == "en_us" else {"transcribe", "translate"}
        assert set(row["verdicts"]) == tasks, lang
        for task, v in row["verdicts"].items():
            assert v["verdict"] in ("pass", "fail", "no verdict") and v["reason"], (lang, task)
        assert row["verdicts"]["transcribe"]["metric"] == ("cer" if lang == "ja_jp" else "wer")
    for clip in rep["clips"]:  # English is not translated into English
        assert ("translate" in clip["tasks"]) == (clip["language"] != "en_us")
    # a model that transcribes gets a verdict where its FP32 is sane: English and Spanish
    for lang in ("en_us", "es_419"):
        v = rep["languages"][lang]["verdicts"]["transcribe"]
        assert v["fp32"] <= 0.5 and v["verdict"] in ("pass", "fail"), (lang, v)


@pytest.mark.slow
def test_identical_texts_have_no_divergence_and_loops_are_named(ml_run):
    rep = _report(ml_run)
    for clip in rep["clips"]:
        for task, t in clip["tasks"].items():
            same = t["fp32_text"] == t["int8_text"]
            assert (t["first_divergence"] is None) == same, (clip["sample"], task, t)
            for side in ("fp32", "int8"):
                text = t[f"{side}_text"].encode()
                ratio = len(text) / len(zlib.compress(text)) if text else 0
                if ratio > 2.4:  # openai-whisper's own fallback test, computed here
                    assert t[f"{side}_loop"], (clip["sample"], task, side)
    listed = {(x["sample"], x["task"], x["side"]) for r in rep["languages"].values() for x in r["loops"]}
    flagged = {
        (c["sample"], task, side)
        for c in rep["clips"]
        for task, t in c["tasks"].items()
        for side in ("fp32", "int8")
        if t[f"{side}_loop"]
    }
    assert listed == flagged


@pytest.mark.slow
def test_calibration_report_flags_runaway_label_decodes(ml_run):
    """Flagged exactly where the decoded calibration text repeats itself by openai-whisper's
    measure (or fills the token cap)."""
    report = json.loads((ml_run / "calibration/report.json").read_text())
    calib = json.loads((ml_run / "calibration/decoder/whisper_decoder_calib.json").read_text())
    flagged = {(f["sample"], f["task"]) for r in report["languages"].values() for f in r["runaway_decodes"]}
    for entry, (decoder_states, _) in zip(calib["metadata"], calib["calib paths"], strict=True):
        sample = Path(decoder_states).parent.name
        text = entry["decoded_tokens"].split("<|notimestamps|>", 1)[1].replace("<|endoftext|>", "").encode()
        ratio = len(text) / len(zlib.compress(text)) if text else 0
        if ratio > 2.4:
            assert (sample, entry["task_type"]) in flagged, (sample, entry["decoded_tokens"])
