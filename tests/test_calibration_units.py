"""Calibration building blocks, checked against openai-whisper's own tokenizer."""

from __future__ import annotations

import pytest
import whisper.tokenizer

from whisper_mxq import calibration, demo


@pytest.fixture(scope="module")
def hf_tokenizer():
    return demo.build_tokenizer()


def test_task_draw_is_a_pure_function_of_seed_and_sample():
    samples = [f"de_de_{i:04d}" for i in range(2000)]
    first = [calibration.choose_task(7, s, 0.2) for s in samples]
    assert first == [calibration.choose_task(7, s, 0.2) for s in reversed(samples)][::-1]
    share = first.count("translate") / len(first)
    assert 0.17 < share < 0.23  # the configured ratio, give or take sampling noise
    other_seed = [calibration.choose_task(8, s, 0.2) for s in samples]
    assert other_seed != first
    assert all(calibration.choose_task(7, s, 0.2, multilingual=False) == "transcribe" for s in samples[:50])
    assert {calibration.choose_task(0, s, 0.0) for s in samples} == {"transcribe"}
    assert {calibration.choose_task(0, s, 1.0) for s in samples} == {"translate"}


@pytest.mark.parametrize("language, task", [("de", "transcribe"), ("ja", "translate"), ("en", "transcribe")])
def test_prompt_matches_openai_whisper(hf_tokenizer, language, task):
    ref = whisper.tokenizer.get_tokenizer(multilingual=True, language=language, task=task)
    prompt = calibration.prompt(hf_tokenizer, language, task, multilingual=True)
    assert prompt.ids == [*ref.sot_sequence, ref.no_timestamps]
    assert prompt.task_type == ("translation_with_lang" if task == "translate" else "transcription_with_lang")


def test_english_only_prompt_has_no_language_or_task(hf_tokenizer):
    ref = whisper.tokenizer.get_tokenizer(multilingual=True)
    prompt = calibration.prompt(hf_tokenizer, "en", "transcribe", multilingual=False)
    assert prompt.ids == [ref.sot, ref.no_timestamps]
    assert prompt.task_type == "transcription_no_lang"


def test_text_ids_cut_at_end_of_text_and_drop_specials():
    ref = whisper.tokenizer.get_tokenizer(multilingual=True, language="de", task="transcribe")
    text = ref.encode(" Guten Morgen")
    eot = ref.eot
    # transformers 4 returns the prompt too; 5 returns only new tokens; both give the text
    with_prompt = [*ref.sot_sequence, ref.no_timestamps, *text, eot, eot, eot]
    assert calibration.text_ids(with_prompt, eot) == text
    assert calibration.text_ids([*text, eot, 123], eot) == text
    assert calibration.text_ids(text + [ref.timestamp_begin + 5], eot) == text


def test_sequence_fits_the_decoder_positions():
    prompt = [1, 2, 3, 4]
    seq = calibration.sequence(prompt, list(range(10, 1000)), eot=9, max_len=448)
    assert len(seq) == 448 and seq[:4] == prompt and seq[-1] == 9
    assert calibration.sequence(prompt, [], eot=9, max_len=448) == [1, 2, 3, 4, 9]


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
        ref.num_mel_bins, ref.max_source_positions, 2 * ref.max_source_positions, ref.d_model)
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["d_model"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config\.json.*d_model"):
        models.shapes(str(tmp_path))
