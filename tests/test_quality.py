"""The ONNX Runtime INT8 backend and the quality report: units, then the offline demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from whisper_mxq import atomic, inference, metrics, onnx_int8, report, sweep

from conftest import OFFLINE, copy_run, snakemake

CFG = yaml.safe_load(OFFLINE.read_text())
LANGS = CFG["languages"]
MODEL = "whisper-tiny-random"


# --- units ------------------------------------------------------------------------------
def test_sqnr_and_cosine():
    x = np.ones(100, dtype=np.float32)
    assert metrics.sqnr_db(x, x * 1.1) == pytest.approx(20.0)  # noise 1/10 of signal
    assert metrics.sqnr_db(x, x) is None  # infinite: JSON has no such number
    assert metrics.cosine(x, 3 * x) == pytest.approx(1.0)
    assert metrics.cosine(x, -x) == pytest.approx(-1.0)


def test_greedy_applies_the_generation_configs_suppression():
    """Suppressed ids are never picked; the first step also obeys begin_suppress_tokens;
    the decode stops at end-of-text, at max_new tokens or at max_len."""
    from types import SimpleNamespace

    eot = 10
    config = SimpleNamespace(suppress_tokens=[11], begin_suppress_tokens=[2, eot])
    masks = inference.suppression(config, 20)

    def logits(ids):  # favours 11 (suppressed), then eot once 4 long, else token len(ids)
        row = np.zeros((len(ids), 20))
        row[-1, 11] = 9
        row[-1, eot if len(ids) >= 4 else len(ids)] = 5
        row[-1, 3] = 1  # the runner-up where begin-suppression forbids 2
        return row

    assert inference.greedy(logits, [15, 16], masks, eot, max_new=10, max_len=448) == [15, 16, 3, 3, eot]
    assert inference.greedy(logits, [15, 16], masks, eot, max_new=1, max_len=448) == [15, 16, 3]
    assert inference.greedy(logits, [15, 16], masks, eot, max_new=10, max_len=3) == [15, 16, 3]


def test_top1_agreement_compares_each_next_token():
    tokens = [50, 51, 1, 2, 3]
    logits = np.zeros((5, 60))
    for pos, nxt in enumerate([0, 1, 2, 7, 0]):  # position 3 predicts 7, FP32 chose 3
        logits[pos, nxt] = 1
    allowed = np.ones(60, dtype=bool)
    assert metrics.top1_agreement(tokens, 2, logits, allowed) == pytest.approx(2 / 3)
    allowed[7] = False  # a suppressed id never counts as a pick
    assert metrics.top1_agreement(tokens, 2, logits, allowed) == pytest.approx(2 / 3)
    assert metrics.top1_agreement(tokens[:2], 2, logits, allowed) is None


def test_first_divergence_and_repetition():
    eot = 50
    assert metrics.first_divergence([1, 2, 5, 6, 7], [1, 2, 5, 9, 7], 2, eot) == {"position": 1, "fp32": 6, "int8": 9}
    assert metrics.first_divergence([1, 2, 5], [1, 2, 5, 6], 2, eot) == {"position": 1, "fp32": None, "int8": 6}
    assert metrics.first_divergence([1, 2, 5], [1, 2, 5], 2, eot) is None
    # the same text, one side ended with end-of-text, the other stopped at the cap
    assert metrics.first_divergence([1, 2, 5, 6, eot], [1, 2, 5, 6], 2, eot) is None
    assert metrics.first_divergence([1, 2, 5, eot], [1, 2, 5, 6, eot], 2, eot) == {
        "position": 1,
        "fp32": None,
        "int8": 6,
    }
    assert metrics.is_repetitive([7, 1, 2, 1, 2, 1, 2, 1, 2])
    assert not metrics.is_repetitive([7, 1, 2, 1, 2, 1, 2, 3])
    assert metrics.is_repetitive([4] * 4) and not metrics.is_repetitive([4] * 3)


def test_loop_reason_names_repeats_compression_and_the_cap():
    import zlib

    eot, cap = 50, 8
    ended = [1, 2, 3, 4, 5, eot]
    assert metrics.loop_reason(ended, 1, eot, "the cat sat on the mat", cap) is None
    looping = "Joo-" * 40
    # openai-whisper's own formula, computed here independently
    ratio = len(looping.encode()) / len(zlib.compress(looping.encode()))
    assert metrics.compression_ratio(looping) == pytest.approx(ratio) and ratio > 2.4
    reason = metrics.loop_reason([1, 7, 8, 9, 10, 11, 12, 13, 14], 1, eot, looping, cap)
    assert "compression ratio" in reason and "no end-of-text within 8 tokens" in reason
    assert "repeats" in metrics.loop_reason([1, 9, 9, 9, 9, eot], 1, eot, "a a a a", cap)


def test_verdict_metric_is_cer_where_words_have_no_spaces():
    assert metrics.verdict_metric("ja_jp") == "cer" and metrics.verdict_metric("cmn_hans_cn") == "cer"
    assert metrics.verdict_metric("de_de") == "wer" and metrics.verdict_metric("sv_se") == "wer"


def test_bleu_and_error_rates_leave_empty_references_out():
    assert metrics.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100)
    assert metrics.bleu(["the cat sat on the mat"], ["a dog ran off"]) == pytest.approx(0)
    assert metrics.bleu([""], ["anything"]) is None
    assert metrics.error_rates(["", "a b"], ["x", "a c"]) == (pytest.approx(0.5), pytest.approx(1 / 3))
    assert metrics.error_rates([""], ["x"]) == (None, None)


def _task(fp32, int8, fp32_loop=None, int8_loop=None):
    return {
        "fp32_text": fp32,
        "int8_text": int8,
        "first_divergence": None,
        "fp32_empty": not fp32,
        "int8_empty": not int8,
        "fp32_repetitive": bool(fp32_loop),
        "int8_repetitive": bool(int8_loop),
        "fp32_loop": fp32_loop,
        "int8_loop": int8_loop,
    }


def _row(sample, lang, reference, fp32, int8, translate=None, **loops):
    tasks = {"transcribe": _task(fp32, int8, loops.get("fp32_loop"), loops.get("int8_loop"))}
    if translate:
        tasks["translate"] = _task(*translate)
    return {
        "sample": sample,
        "language": lang,
        "reference": reference,
        "tasks": tasks,
        "encoder_cosine": 1.0,
        "encoder_sqnr_db": 30.0,
        "decoder_top1_agreement": 1.0,
    }


def _settings(**kw):
    # the schema's defaults, read from it (Settings has none of its own)
    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    defaults = {k: schema["properties"]["quality"]["properties"][k]["default"] for k in report.THRESHOLDS}
    return report.Settings(max_new_tokens=8, latency_runs=1, threads=1, **{**defaults, **kw})


def test_summary_verdict_against_max_wer_increase_and_clips_without_reference():
    rows = [
        _row("de_de_0000", "de_de", "eins zwei drei vier", "eins zwei drei vier", "eins zwei drei fünf"),
        _row("de_de_0001", "de_de", None, "hallo", ""),
    ]
    out = report.summary(rows, _settings(max_wer_increase=0.3))
    assert out["clips"] == 2 and out["clips_scored"] == 1  # the clip without reference: not in WER
    assert out["wer_fp32"] == 0 and out["wer_int8"] == pytest.approx(0.25)
    assert out["verdict"] == "pass" and report.summary(rows, _settings(max_wer_increase=0.2))["verdict"] == "fail"
    assert out["empty_rate_int8"] == 0.5 and out["empty_rate_fp32"] == 0
    assert report.summary(rows[1:], _settings())["verdicts"]["transcribe"]["verdict"] == "no reference"
    assert set(report.METRICS) <= set(out)


def test_a_clip_fp32_loops_on_neither_fakes_nor_hides_the_verdict():
    """One clip the model fails before quantization (FP32 runs away to the cap) would
    put WER near 4 on both sides; the verdict leaves it out and says so."""
    good = [
        _row(f"fr_fr_000{i}", "fr_fr", "le chat est noir", "le chat est noir", "le chat est noir") for i in range(3)
    ]
    bad = _row("fr_fr_0009", "fr_fr", "bonjour", "jo " * 40, "jo " * 40, fp32_loop="repeats", int8_loop="repeats")
    out = report.summary([*good, bad], _settings())
    assert out["wer_fp32"] > 3  # every clip: the loop dominates
    assert out["without_loops"]["wer_fp32"] == 0 and out["without_loops"]["clips_scored"] == 3
    tr = out["verdicts"]["transcribe"]
    assert tr["verdict"] == "pass" and tr["decided_on"].startswith("3 of 4 clips")
    assert out["loop_rate_fp32"] == pytest.approx(0.25)
    assert out["loops"][0] == {"sample": "fr_fr_0009", "task": "transcribe", "side": "fp32", "reason": "repeats"}


def test_int8_running_away_where_fp32_ends_fails_by_name():
    rows = [
        _row("de_de_0000", "de_de", "eins zwei", "eins zwei", "eins zwei"),
        _row("de_de_0001", "de_de", "drei vier", "drei vier", "joo " * 30, int8_loop="compression ratio 9.0 > 2.4"),
    ]
    tr = report.summary(rows, _settings())["verdicts"]["transcribe"]
    assert tr["verdict"] == "fail" and tr["int8_new_loops"] == ["de_de_0001"]
    assert tr["reason"] == "INT8 runs away on 1 clip(s) where FP32 ends: de_de_0001"
    assert tr["increase"] == 0  # on the clips where both end, nothing changed


def test_fp32_that_cannot_transcribe_gets_no_verdict_naming_the_key():
    rows = [_row("it_it_0000", "it_it", "il treno parte ogni venti minuti", "e come ti vuole dire", "e come")]
    tr = report.summary(rows, _settings())["verdicts"]["transcribe"]
    assert tr["verdict"] == "no verdict" and "quality.max_fp32_error 0.5" in tr["reason"]


def test_translate_is_in_the_verdict_with_its_own_threshold():
    ref = {"es_419_0000": "the museum is closed on mondays", "es_419_0001": "the train leaves every twenty minutes"}
    rows = [
        _row(
            "es_419_0000",
            "es_419",
            "el museo",
            "el museo",
            "el museo",
            ("the museum is closed on mondays", "the museum is closed"),
        ),
        _row(
            "es_419_0001",
            "es_419",
            "el tren",
            "el tren",
            "el tren",
            ("the train leaves every twenty minutes", "the train leaves every twenty minutes"),
        ),
    ]
    out = report.summary(rows, _settings(max_bleu_drop=5.0), ref)
    tl = out["verdicts"]["translate"]
    assert out["verdicts"]["transcribe"]["verdict"] == "pass"
    assert tl["fp32"] == pytest.approx(100) and tl["drop"] > 5
    assert tl["verdict"] == "fail" and out["verdict"] == "fail"  # transcribe passing is not enough
    assert report.summary(rows, _settings(max_bleu_drop=100.0), ref)["verdict"] == "pass"


def test_overall_verdict_is_the_languages():
    langs = {"de_de": {"verdict": "pass"}, "ja_jp": {"verdict": "no verdict"}}
    rows = [_row("de_de_0000", "de_de", "a b", "a b", "a b"), _row("ja_jp_0000", "ja_jp", "真", "真", "真")]
    out = report.overall(rows, langs, None)
    assert out["verdict"] == "no verdict" and out["verdicts_by_language"] == {"de_de": "pass", "ja_jp": "no verdict"}
    assert report.overall(rows, {**langs, "fr_fr": {"verdict": "fail"}}, None)["verdict"] == "fail"


def test_sweep_sizes_are_powers_of_two_up_to_all():
    assert sweep.sweep_sizes(24, None) == [1, 2, 4, 8, 16, 24]
    assert sweep.sweep_sizes(16, None) == [1, 2, 4, 8, 16]
    assert sweep.sweep_sizes(5, [1, 4, 99]) == [1, 4, 5]


def _fake_calibration(root: Path, samples: list[tuple[str, bool]], n_mels=4, frames=6, d=3):
    """Calibration files in the workflow's layout and formats, tiny shapes."""
    enc_paths, pairs, metadata = [], [], []
    for k, (sample, translate) in enumerate(samples):
        enc = root / f"calibration/encoder/encoder_calib_{sample}.npy"
        atomic.write_npy(enc, np.full((1, frames, n_mels), k, np.float32))
        folder = root / f"calibration/decoder/sample_{sample}"
        atomic.write_npy(folder / "encoder_hidden_states.npy", np.full((1, 5, d), k, np.float32))
        atomic.write_npy(folder / "decoder_hidden_states.npy", np.full((1, 2 + k, d), k, np.float32))
        enc_paths.append(str(enc))
        pairs.append([str(folder / "decoder_hidden_states.npy"), str(folder / "encoder_hidden_states.npy")])
        metadata.append({"use_translation": translate, "task_type": "x"})
    (root / "list.txt").write_text("".join(p + "\n" for p in enc_paths))
    info = {"input names": list(onnx_int8.DECODER_INPUTS), "input shapes": [[1, -1, d], [1, 5, d]]}
    atomic.write_json(root / "calib.json", {"info": info, "calib paths": pairs, "metadata": metadata})
    return root / "list.txt", root / "calib.json"


def test_readers_feed_the_calibration_formats_and_subsets(tmp_path):
    samples = [
        ("de_de_0000", False),
        ("de_de_0001", True),
        ("de_de_0002", False),
        ("en_us_0000", False),
        ("en_us_0001", True),
    ]
    txt, js = _fake_calibration(tmp_path, samples)
    enc = onnx_int8.encoder_reader(str(txt))
    feeds = [enc.get_next() for _ in range(enc.count)]
    assert enc.get_next() is None and enc.count == 5
    assert [f[onnx_int8.ENCODER_INPUT].shape for f in feeds] == [(1, 6, 4)] * 5  # NPU layout, as stored
    enc.rewind()
    assert float(enc.get_next()[onnx_int8.ENCODER_INPUT][0, 0, 0]) == 0
    dec = onnx_int8.decoder_reader(str(js), {"de_de_0001", "en_us_0000"})
    first = dec.get_next()
    assert dec.count == 2 and set(first) == set(onnx_int8.DECODER_INPUTS)
    assert first["decoder_hidden_states"].shape == (1, 3, 3)
    # round robin over languages; the transcribe mix leaves the translation samples out
    assert sweep.sweep_subset(str(js), 3, "all") == ["de_de_0000", "en_us_0000", "de_de_0001"]
    assert sweep.sweep_subset(str(js), 9, "transcribe") == ["de_de_0000", "en_us_0000", "de_de_0002"]
    with pytest.raises(ValueError, match="no calibration samples"):
        onnx_int8.encoder_reader(str(txt), {"fr_fr_0000"})


# --- the offline demo ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def quality_run(demo_run, tmp_path_factory) -> Path:
    """The finished demo, plus the quality report and the calibration-size sweep."""
    work = copy_run(demo_run, tmp_path_factory.mktemp("quality") / "run")
    snakemake(work, "-j2", "quality", "quality_sweep", "--configfile", str(OFFLINE))
    return work


@pytest.mark.slow
def test_onnx_targets_build_with_npu_shaped_inputs(quality_run):
    import onnx

    for part in ("encoder", "decoder"):
        fp32 = onnx.load(quality_run / f"compiled/{MODEL}_{part}.onnx")
        int8 = onnx.load(quality_run / f"compiled/{MODEL}_{part}.int8.onnx")
        onnx.checker.check_model(int8)
        ops = {n.op_type for n in int8.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops, part
        assert not {"QuantizeLinear"} & {n.op_type for n in fp32.graph.node}
    enc = onnx.load(quality_run / f"compiled/{MODEL}_encoder.int8.onnx")
    dims = [d.dim_value for d in enc.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3000, 80]  # [1, frames, n_mels]: the .npy layout, the NPU's
    dec = onnx.load(quality_run / f"compiled/{MODEL}_decoder.int8.onnx")
    assert [i.name for i in dec.graph.input] == list(onnx_int8.DECODER_INPUTS)
    assert dec.graph.input[0].type.tensor_type.shape.dim[1].dim_param  # T is dynamic


def _strict_json(path: Path):
    """Python's json reads NaN and Infinity; strict JSON has neither."""

    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.slow
def test_report_has_every_field_for_every_language(quality_run):
    rep = _strict_json(quality_run / f"reports/{MODEL}_quality.json")
    assert "transcribes nothing" in rep["note"]
    assert set(rep["languages"]) == set(LANGS)
    for name, row in [*rep["languages"].items(), ("overall", rep["overall"])]:
        assert set(report.METRICS) <= set(row), name
        if name != "en_us":
            assert set(report.TRANSLATION_METRICS) <= set(row), name  # the translate task too
        # a random model transcribes nothing: it never passes (no verdict, or a fail
        # where INT8 runs away where FP32 ended), and each verdict says why
        assert row["verdict"] in ("no verdict", "fail"), name
    for lang, row in rep["languages"].items():
        for task, v in row["verdicts"].items():
            assert v["verdict"] != "pass" and v["reason"], (lang, task, v)
    assert rep["overall"]["clips"] == len(LANGS) * CFG["quality"]["eval"]["samples_per_language"]
    assert rep["calibration"]["encoder_samples"] == len(LANGS) * CFG["samples_per_language"]
    assert rep["latency"]["encoder_int8_ms"] > 0 and rep["backend"] == "onnx"
    for clip in rep["clips"]:
        assert set(clip["tasks"]) == ({"transcribe"} if clip["language"] == "en_us" else {"transcribe", "translate"})
        for task in clip["tasks"].values():
            assert "first_divergence" in task and isinstance(task["int8_text"], str)
    # which node got which precision, and how far each compute node's output strays
    import onnx

    for part in ("encoder", "decoder"):
        nodes = rep["precision"][part]["nodes"]
        assert nodes and set(nodes.values()) <= {"int8", "int16", "float"}
        graph = onnx.load(quality_run / f"compiled/{MODEL}_{part}.onnx").graph
        compute = [n.name for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
        rows = rep["sensitivity"][part]
        assert [r["node"] for r in rows] == compute  # every compute node, in graph order
        assert all(r["sqnr_db"] is None or r["sqnr_db"] > 0 for r in rows)
    for key in ("wer", "agreement", "latency"):
        assert (quality_run / f"reports/{MODEL}_quality_{key}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_eval_clips_are_held_out(quality_run):
    from whisper_mxq import data

    def sentences(folder):
        return {
            s["raw_transcription"]
            for m in (quality_run / folder).glob("[0-9][0-9][0-9].json")
            for s in data.manifest_samples(json.loads(m.read_text()))
        }

    used, held = sentences("data/manifests"), sentences("data/eval_manifests")
    assert held and not used & held


@pytest.mark.slow
def test_sweep_covers_every_size_and_mix(quality_run):
    sweep = json.loads((quality_run / f"reports/{MODEL}_sweep.json").read_text())
    got = {(p["mix"], p["size"]) for p in sweep["points"]}
    assert got == {(m, s) for m in ("all", "transcribe") for s in (1, 24)}
    assert all(p["calibration_samples"] <= p["size"] for p in sweep["points"])
    assert (quality_run / f"reports/{MODEL}_sweep.png").exists()
    assert not list((quality_run / f"reports/sweep/{MODEL}").glob(".*"))  # no leftovers


@pytest.mark.slow
def test_snakemake_report_shows_the_plots(quality_run):
    snakemake(quality_run, "--report", "report.html", "quality", "--configfile", str(OFFLINE))
    html = (quality_run / "report.html").read_text(errors="replace")
    for key in ("wer", "agreement", "latency"):
        assert f"{MODEL}_quality_{key}.png" in html


@pytest.mark.slow
def test_constant_calibration_features_give_worse_encoder_sqnr(quality_run, tmp_path):
    """A broken calibration set (every feature one constant) must show in the metric."""
    real_list = quality_run / "calibration/encoder/whisper_encoder_cali.txt"
    entries = onnx_int8.encoder_calibration(str(real_list))
    level = float(np.mean([atomic.read_npy(p).mean() for _, p in entries]))
    lines = []
    for sample, path in entries:
        broken = tmp_path / f"calibration/encoder/encoder_calib_{sample}.npy"
        atomic.write_npy(broken, np.full_like(atomic.read_npy(path), level))
        lines.append(f"{broken}\n")
    (tmp_path / "broken.txt").write_text("".join(lines))
    fp32 = str(quality_run / f"compiled/{MODEL}_encoder.onnx")
    broken_onnx = str(tmp_path / "encoder.broken.int8.onnx")
    onnx_int8.quantize_part("encoder", fp32, str(tmp_path / "broken.txt"), broken_onnx, "minmax", False, "naive")

    reference = onnx_int8.session(fp32)
    held = [quality_run / f"data/eval_audio/{lang}_0000.wav" for lang in LANGS[:3]]
    from transformers import WhisperFeatureExtractor

    from whisper_mxq import audio, encoder_calibration

    fe = WhisperFeatureExtractor.from_pretrained(quality_run / f"models/{MODEL}")
    feats = [encoder_calibration.encoder_features(fe, audio.load(w)) for w in held]

    def sqnr(model: str) -> float:
        sess = onnx_int8.session(model)
        return float(
            np.mean(
                [metrics.sqnr_db(onnx_int8.run_encoder(reference, f), onnx_int8.run_encoder(sess, f)) for f in feats]
            )
        )

    real = sqnr(str(quality_run / f"compiled/{MODEL}_encoder.int8.onnx"))
    broken = sqnr(broken_onnx)
    assert real > broken + 3, (real, broken)


@pytest.mark.slow
def test_fp32_onnx_pair_matches_pytorch_with_host_embeddings(quality_run):
    """The exported graphs are the model: encoder on [1, frames, n_mels], decoder on
    host-side token + position embeddings, for more than one sequence length."""
    import torch

    from whisper_mxq import decoder_calibration, models

    model = models.load_model(str(quality_run / f"models/{MODEL}"))
    enc = onnx_int8.session(str(quality_run / f"compiled/{MODEL}_encoder.onnx"))
    dec = onnx_int8.session(str(quality_run / f"compiled/{MODEL}_decoder.onnx"))
    feats = atomic.read_npy(quality_run / f"calibration/encoder/encoder_calib_{LANGS[0]}_0000.npy")
    with torch.no_grad():
        want = model.get_encoder()(torch.from_numpy(feats).transpose(1, 2)).last_hidden_state
    states = onnx_int8.run_encoder(enc, feats)
    np.testing.assert_allclose(states, want.numpy(), rtol=1e-4, atol=1e-4)
    for ids in ([50258], [50258, 50259, 50359, 50363, 400, 500, 600]):
        with torch.no_grad():
            logits = model(encoder_outputs=(want,), decoder_input_ids=torch.tensor([ids])).logits
        tables = decoder_calibration.embedding_tables(model)
        got = onnx_int8.run_decoder(dec, decoder_calibration.decoder_input(tables, ids), states)
        np.testing.assert_allclose(got, logits.numpy(), rtol=1e-3, atol=1e-3)
