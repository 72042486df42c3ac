"""Calibration building blocks, checked against openai-whisper's own tokenizer."""

from __future__ import annotations

import pytest
import whisper.tokenizer

from whisper_mxq import calibration, demo, jobs, layout
from whisper_mxq import decoder_calibration as dec


@pytest.fixture(scope="module")
def hf_tokenizer():
    return demo.build_tokenizer()


def test_task_draw_is_a_pure_function_of_seed_and_sample():
    samples = [f"de_de_{i:04d}" for i in range(2000)]
    first = [dec.choose_task(7, s, 0.2) for s in samples]
    assert first == [dec.choose_task(7, s, 0.2) for s in reversed(samples)][::-1]
    share = first.count("translate") / len(first)
    assert 0.17 < share < 0.23  # the configured ratio, give or take sampling noise
    other_seed = [dec.choose_task(8, s, 0.2) for s in samples]
    assert other_seed != first
    assert all(dec.choose_task(7, s, 0.2, multilingual=False) == "transcribe" for s in samples[:50])
    assert {dec.choose_task(0, s, 0.0) for s in samples} == {"transcribe"}
    assert {dec.choose_task(0, s, 1.0) for s in samples} == {"translate"}


@pytest.mark.parametrize("language, task", [("de", "transcribe"), ("ja", "translate"), ("en", "transcribe")])
def test_prompt_matches_openai_whisper(hf_tokenizer, language, task):
    ref = whisper.tokenizer.get_tokenizer(multilingual=True, language=language, task=task)
    prompt = dec.prompt(hf_tokenizer, language, task, multilingual=True)
    assert prompt.ids == [*ref.sot_sequence, ref.no_timestamps]
    assert prompt.task_type == ("translation_with_lang" if task == "translate" else "transcription_with_lang")


def test_english_only_prompt_has_no_language_or_task(hf_tokenizer):
    ref = whisper.tokenizer.get_tokenizer(multilingual=True)
    prompt = dec.prompt(hf_tokenizer, "en", "transcribe", multilingual=False)
    assert prompt.ids == [ref.sot, ref.no_timestamps]
    assert prompt.task_type == "transcription_no_lang"


def test_text_ids_cut_at_end_of_text_and_drop_specials():
    ref = whisper.tokenizer.get_tokenizer(multilingual=True, language="de", task="transcribe")
    text = ref.encode(" Guten Morgen")
    eot = ref.eot
    # transformers 4 returns the prompt too; 5 returns only new tokens; both give the text
    with_prompt = [*ref.sot_sequence, ref.no_timestamps, *text, eot, eot, eot]
    assert dec.text_ids(with_prompt, eot) == text
    assert dec.text_ids([*text, eot, 123], eot) == text
    assert dec.text_ids(text + [ref.timestamp_begin + 5], eot) == text


def test_sequence_fits_the_decoder_positions():
    prompt = [1, 2, 3, 4]
    seq = dec.sequence(prompt, list(range(10, 1000)), eot=9, max_len=448)
    assert len(seq) == 448 and seq[:4] == prompt and seq[-1] == 9
    assert dec.sequence(prompt, [], eot=9, max_len=448) == [1, 2, 3, 4, 9]


def test_batch_size_auto_follows_the_device_and_bad_values_name_the_key():
    assert calibration.batch_size("auto", "cuda:1") == calibration.GPU_BATCH
    assert calibration.batch_size("auto", "cpu") == calibration.CPU_BATCH
    assert calibration.batch_size(5, "cuda") == 5
    for bad in (0, "16", 2.5):
        with pytest.raises(ValueError, match="calibration.batch_size"):
            calibration.batch_size(bad, "cpu")


def test_shapes_read_from_config_json_match_whisper_config(tmp_path):
    """models.shapes reads config.json as JSON (no transformers import in the list
    jobs); WhisperConfig, saving and loading the same file, is the reference."""
    import json

    from transformers import WhisperConfig

    from whisper_mxq import models

    WhisperConfig(num_mel_bins=128, d_model=96, max_source_positions=1500).save_pretrained(tmp_path)
    ref = WhisperConfig.from_pretrained(tmp_path)
    got = models.shapes(str(tmp_path))
    assert (got.n_mels, got.n_source, got.n_frames, got.d_model) == (
        ref.num_mel_bins,
        ref.max_source_positions,
        2 * ref.max_source_positions,
        ref.d_model,
    )
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["d_model"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config\.json.*d_model"):
        models.shapes(str(tmp_path))


def test_plan_keeps_each_job_to_one_language():
    langs = ["de_de", "fr_fr", "ja_jp"]
    plan = jobs.plan(langs, 5, 4)
    order = [layout.sample_id(lang, i) for lang in langs for i in range(5)]
    assert [s for j in plan for s in j.samples] == order  # every sample once, in list order
    assert [j.languages for j in plan] == [[lang] for lang in langs for _ in (0, 1)]
    assert [len(j.samples) for j in plan] == [4, 1] * 3
    assert [j.name for j in plan] == ["000", "001", "002", "003", "004", "005"]
    assert jobs.previous(plan, plan[1].slices[0]) == plan[0]
    assert jobs.previous(plan, plan[2].slices[0]) is None
    # adding a language at the end leaves the earlier jobs as they were
    assert jobs.plan(langs + ["ko_kr"], 5, 4)[:6] == plan
    # small languages get a job each, however large the jobs may be
    assert [j.languages for j in jobs.plan(langs, 2, 100)] == [[lang] for lang in langs]
    assert jobs.plan(["de_de"], 1001, 1)[-1].name == "1000"


def test_a_packed_plan_cuts_consecutive_jobs_over_language_then_index():
    langs = ["de_de", "fr_fr", "ja_jp"]
    plan = jobs.plan(langs, 5, 4, pack=True)
    order = [layout.sample_id(lang, i) for lang in langs for i in range(5)]
    assert [s for j in plan for s in j.samples] == order  # every sample once, in list order
    assert [len(j.samples) for j in plan] == [4, 4, 4, 3]
    assert [j.name for j in plan] == ["000", "001", "002", "003"]
    assert plan[1].slices == (jobs.Slice("de_de", 4, 5), jobs.Slice("fr_fr", 0, 3))
    # a job continues a language where the one before it stopped
    assert jobs.previous(plan, plan[1].slices[0]) == plan[0]
    assert jobs.previous(plan, plan[1].slices[1]) is None
    assert jobs.previous(plan, plan[2].slices[0]) == plan[1]
    # adding a language at the end leaves the earlier jobs as they were
    assert jobs.plan(langs + ["ko_kr"], 5, 4, pack=True)[:3] == plan[:3]
    # whole small languages share a job; a job name grows with the job count
    assert [len(j.languages) for j in jobs.plan(langs, 2, 100, pack=True)] == [3]
    assert jobs.plan(["de_de"], 1001, 1, pack=True)[-1].name == "1000"


def test_auto_samples_per_job_shares_the_gpus_among_the_steps():
    assert jobs.jobs_at_once(4, 0) == 0  # steps on CPUs
    assert [jobs.jobs_at_once(n, 2) for n in (1, 2, 4, 8)] == [1, 1, 2, 4]  # labels + calibration
    assert jobs.jobs_at_once(2, 1) == 2
    assert jobs.auto_samples_per_job(340, 0) == jobs.CPU_SAMPLES_PER_JOB
    assert jobs.auto_samples_per_job(1003, 1) == 1003
    assert jobs.auto_samples_per_job(1003, 2) == 502  # two jobs of a step at once
    # past the cap: rounds of `at_once` jobs, all the same size
    per = jobs.auto_samples_per_job(17_000, 2)
    assert per <= jobs.GPU_JOB_CAP and len(jobs.plan(["de_de"] * 17, 1000, per, pack=True)) % 2 == 0


def test_auto_is_resolved_once_and_handed_down(monkeypatch):
    monkeypatch.setenv(jobs.AUTO_ENV, "")  # recorded, so the teardown removes what the run sets
    monkeypatch.delenv(jobs.AUTO_ENV)
    assert jobs.samples_per_job("auto", 1003, 2) == 502
    # a cluster job parsing the Snakefile again sees other GPUs: the plan must not change
    assert jobs.samples_per_job("auto", 1003, 0) == 502
    assert jobs.samples_per_job(7, 1003, 2) == 7


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,3")
    assert jobs.visible_gpus() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert jobs.visible_gpus() == 0
