"""The quality report: what INT8 costs on held-out clips, with verdicts a user can act on.

Per clip: FP32 and INT8 text for each task (translate too on a multilingual model, but
not for English clips), where their text first diverges, empty output, decodes that run
away (repeat themselves or never end), encoder SQNR and cosine, decoder top-1 agreement
(teacher-forced on the FP32 tokens with FP32 encoder states: the decoder's own
quantization). Per language and overall: WER/CER against the references, BLEU of the
translations against a human English reference where the source has one (FLEURS is
n-way parallel) and the label model's translations where it has not, rates of empty and
runaway output, and a verdict per task against the `quality:` thresholds.

Verdicts are decided on the clips where FP32 does not run away (a clip the model fails
before quantization says nothing about INT8) and INT8 does not either; an INT8 decode
that runs away where FP32's ended fails the task by itself, named. The same figures over
every clip stand beside them. Clips without a reference are left out of WER, each with
its reason.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import atomic, inference, metrics
from .heldout import clips as read_clips

NOTE = (
    "INT8 (ONNX Runtime, static, calibrated on the workflow's calibration files) vs FP32 "
    "(PyTorch) on held-out clips. A randomly initialised model (the offline demo) "
    "transcribes nothing, so only its INT8-vs-FP32 columns say anything. ONNX Runtime's INT8 "
    "is not the NPU's quantizer: treat this as a check of the calibration data and of what "
    "INT8 does to this model, not a prediction of the .mxq's accuracy."
)
# Per-language and overall fields; tests check every one is present.
METRICS = (
    "clips",
    "clips_scored",
    "wer_fp32",
    "wer_int8",
    "cer_fp32",
    "cer_int8",
    "wer_int8_vs_fp32",
    "cer_int8_vs_fp32",
    "wer_increase",
    "verdict",
    "empty_rate_fp32",
    "empty_rate_int8",
    "repetition_rate_fp32",
    "repetition_rate_int8",
    "encoder_cosine",
    "encoder_sqnr_db",
    "decoder_top1_agreement",
)
TRANSLATION_METRICS = ("bleu_fp32", "bleu_int8", "bleu_int8_vs_fp32")
SIDES = ("fp32", "int8")


# The `quality:` keys a verdict is judged against (their defaults: the schema's).
THRESHOLDS = ("max_wer_increase", "max_bleu_drop", "max_fp32_error", "min_fp32_bleu")


@dataclass(frozen=True)
class Settings:
    """The `quality:` config block's decoding and verdict settings (defaults: the schema's)."""

    max_new_tokens: int
    latency_runs: int
    threads: int
    max_wer_increase: float
    max_bleu_drop: float
    max_fp32_error: float
    min_fp32_bleu: float


def _labels(paths: list[str]) -> dict[str, dict]:
    return {f: label for p in paths for f, label in atomic.read_json(p)["labels"].items()}


# --- FP32 reference --------------------------------------------------------------------
def write_reference(snapshot: str, manifests: list[str], out_json: str, max_new_tokens: int, threads: int) -> dict:
    """FP32 tokens of every held-out clip and task, decoded once for the report and sweep."""
    import torch

    torch.set_num_threads(threads)
    ctx = inference.Context(snapshot, read_clips(manifests), manifests)
    rows = []
    for i, clip in enumerate(ctx.clips):
        tasks = {}
        for task in ctx.tasks(clip):
            ids = ctx.decode_fp32(i, task, max_new_tokens)
            tasks[task] = {"tokens": ids, "text": ctx.text(ids)}
        rows.append({"sample": clip.sample, "tasks": tasks})
    result = {"max_new_tokens": max_new_tokens, "clips": rows}
    atomic.write_json(out_json, result)
    return result


# --- per clip ---------------------------------------------------------------------------
def agreement(ctx: inference.Context, path: inference.Backend, i: int, ref_tokens: list[int]) -> dict:
    """Encoder and decoder agreement of one clip with FP32 (no free-running decode)."""
    clip, states = ctx.clips[i], ctx.fp32_states[i]
    int8_states = path.encode(ctx.features[i])
    start = len(ctx.prompt(clip))
    return {
        "int8_states": int8_states,
        "encoder_cosine": metrics.cosine(states, int8_states),
        "encoder_sqnr_db": metrics.sqnr_db(states, int8_states),
        "decoder_top1_agreement": metrics.top1_agreement(
            ref_tokens, start, path.logits(ref_tokens, states), ctx.masks[0]
        ),
    }


def _clip_row(ctx, path, i: int, ref: dict, max_new: int) -> dict:
    clip = ctx.clips[i]
    fp32 = ref["tasks"]
    row = agreement(ctx, path, i, fp32["transcribe"]["tokens"])
    int8_states = row.pop("int8_states")
    row.update(sample=clip.sample, language=clip.lang, reference=clip.reference, tasks={})
    for task, fp in fp32.items():
        ids = ctx.decode(path, int8_states, clip, task, max_new)
        start, text = len(ctx.prompt(clip, task)), ctx.text(ids)
        row["tasks"][task] = {
            "fp32_text": fp["text"],
            "int8_text": text,
            "first_divergence": metrics.first_divergence(fp["tokens"], ids, start, ctx.eot),
            "fp32_empty": not fp["text"],
            "int8_empty": not text,
            "fp32_repetitive": metrics.is_repetitive(fp["tokens"][start:]),
            "int8_repetitive": metrics.is_repetitive(ids[start:]),
            "fp32_loop": metrics.loop_reason(fp["tokens"], start, ctx.eot, fp["text"], max_new),
            "int8_loop": metrics.loop_reason(ids, start, ctx.eot, text, max_new),
        }
    return row


# --- summaries --------------------------------------------------------------------------
def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _new_loops(rows: list[dict], task: str) -> list[str]:
    """Clips where INT8 runs away and FP32 does not: quantization's own failure."""
    return [r["sample"] for r in rows if r["tasks"][task]["int8_loop"] and not r["tasks"][task]["fp32_loop"]]


def _ended(rows: list[dict], task: str) -> list[dict]:
    """Clips where neither side runs away on `task`: what verdicts are decided on."""
    return [r for r in rows if not r["tasks"][task]["fp32_loop"] and not r["tasks"][task]["int8_loop"]]


def _error_rates(rows: list[dict]) -> dict:
    """WER and CER of both sides against the references, over the clips that have one."""
    norm = {lang: metrics.normalizer(lang) for lang in {r["language"] for r in rows}}
    scored = [r for r in rows if (r["reference"] or "").strip()]
    refs = [norm[r["language"]](r["reference"]) for r in scored]
    out = {"clips_scored": len(scored)}
    for side in SIDES:
        hyps = [norm[r["language"]](r["tasks"]["transcribe"][f"{side}_text"]) for r in scored]
        out[f"wer_{side}"], out[f"cer_{side}"] = metrics.error_rates(refs, hyps)
    return out


def _decided(metric: str, used: int, clips: int, fp, q, new: list[str]) -> dict:
    """The figures every task verdict carries, and which clips decided it."""
    return {
        "metric": metric,
        "decided_on": f"{used} of {clips} clips: with a reference, neither side running away",
        "fp32": fp,
        "int8": q,
        "int8_new_loops": new,
    }


def _new_loops_reason(new: list[str]) -> str:
    return f"INT8 runs away on {len(new)} clip(s) where FP32 ends: {', '.join(new)}"


def transcribe_verdict(rows: list[dict], metric: str, settings: Settings) -> dict:
    """pass / fail / no verdict for transcription, with the figures that decided it."""
    ended = _ended(rows, "transcribe")
    rates = _error_rates(ended)
    fp, q = rates[f"{metric}_fp32"], rates[f"{metric}_int8"]
    new = _new_loops(rows, "transcribe")
    out = {
        **_decided(metric, rates["clips_scored"], len(rows), fp, q, new),
        "increase": None if fp is None or q is None else q - fp,
        "max_increase": settings.max_wer_increase,
    }
    if new:
        verdict, reason = "fail", _new_loops_reason(new)
    elif not any((r["reference"] or "").strip() for r in rows):
        verdict, reason = "no reference", "no clip has a reference transcription in the source"
    elif fp is None:
        verdict, reason = "no verdict", "no clip with a reference on which both sides end"
    elif fp > settings.max_fp32_error:
        verdict = "no verdict"
        reason = (
            f"FP32 {metric.upper()} {fp:.3f} > quality.max_fp32_error {settings.max_fp32_error}: the model "
            "does not transcribe these clips, so their references cannot show what INT8 costs "
            f"({metric}_int8_vs_fp32 still does)"
        )
    elif out["increase"] <= settings.max_wer_increase:
        verdict, reason = "pass", f"{metric.upper()} +{out['increase']:.3f} <= {settings.max_wer_increase}"
    else:
        verdict, reason = "fail", f"{metric.upper()} +{out['increase']:.3f} > {settings.max_wer_increase}"
    return {**out, "verdict": verdict, "reason": reason}


def translate_verdict(rows: list[dict], references: dict[str, str], settings: Settings) -> dict | None:
    """pass / fail / no verdict for translation (BLEU drop), or None without the task."""
    rows = [r for r in rows if "translate" in r["tasks"]]
    if not rows:
        return None
    ended = [r for r in _ended(rows, "translate") if references.get(r["sample"], "").strip()]
    refs = [references[r["sample"]] for r in ended]
    fp = metrics.bleu(refs, [r["tasks"]["translate"]["fp32_text"] for r in ended])
    q = metrics.bleu(refs, [r["tasks"]["translate"]["int8_text"] for r in ended])
    new = _new_loops(rows, "translate")
    out = {
        **_decided("bleu", len(ended), len(rows), fp, q, new),
        "drop": None if fp is None or q is None else fp - q,
        "max_drop": settings.max_bleu_drop,
    }
    if new:
        verdict, reason = "fail", _new_loops_reason(new)
    elif fp is None:
        verdict, reason = "no verdict", "no clip with a reference translation on which both sides end"
    elif fp < settings.min_fp32_bleu:
        verdict = "no verdict"
        reason = (
            f"FP32 BLEU {fp:.1f} < quality.min_fp32_bleu {settings.min_fp32_bleu}: the model does not "
            "translate these clips, so the references cannot show what INT8 costs"
        )
    elif out["drop"] <= settings.max_bleu_drop:
        verdict, reason = "pass", f"BLEU -{out['drop']:.1f} <= {settings.max_bleu_drop}"
    else:
        verdict, reason = "fail", f"BLEU -{out['drop']:.1f} > {settings.max_bleu_drop}"
    return {**out, "verdict": verdict, "reason": reason}


def combine(verdicts: dict[str, str]) -> str:
    """One verdict of several: fail if any fails, pass if every one passes."""
    values = list(verdicts.values())
    if "fail" in values:
        return "fail"
    if values and all(v == "pass" for v in values):
        return "pass"
    return "no reference" if values and all(v == "no reference" for v in values) else "no verdict"


def summary(rows: list[dict], settings: Settings, references: dict[str, str] | None = None) -> dict:
    """Per-language figures of a set of clip rows, with its verdicts."""
    languages = {r["language"] for r in rows}
    metric = metrics.verdict_metric(next(iter(languages))) if len(languages) == 1 else "wer"
    out = _figures(rows, references)
    verdicts = {"transcribe": transcribe_verdict(rows, metric, settings)}
    translate = translate_verdict(rows, references or {}, settings)
    if translate is not None:
        verdicts["translate"] = translate
    out["verdicts"] = verdicts
    out["verdict"] = combine({task: v["verdict"] for task, v in verdicts.items()})
    out["wer_increase"] = verdicts["transcribe"]["increase"] if metric == "wer" else None
    return out


def _figures(rows: list[dict], references: dict[str, str] | None) -> dict:
    """Every figure over all clips, and over the clips where no decode runs away."""
    norm = {lang: metrics.normalizer(lang) for lang in {r["language"] for r in rows}}
    all_tr = [r["tasks"]["transcribe"] for r in rows]

    def normed(key: str) -> list[str]:
        return [norm[r["language"]](t[key]) for r, t in zip(rows, all_tr)]

    wer_vs, cer_vs = metrics.error_rates(normed("fp32_text"), normed("int8_text"))
    flags = [t for r in rows for t in r["tasks"].values()]
    rates = _error_rates(rows)
    out = {
        "clips": len(rows),
        **rates,
        "wer_int8_vs_fp32": wer_vs,
        "cer_int8_vs_fp32": cer_vs,
        "without_loops": _error_rates(_ended(rows, "transcribe")),
        **{f"empty_rate_{side}": metrics.rate([t[f"{side}_empty"] for t in flags]) for side in SIDES},
        **{f"repetition_rate_{side}": metrics.rate([t[f"{side}_repetitive"] for t in flags]) for side in SIDES},
        **{f"loop_rate_{side}": metrics.rate([bool(t[f"{side}_loop"]) for t in flags]) for side in SIDES},
        "loops": [
            {"sample": r["sample"], "task": task, "side": side, "reason": t[f"{side}_loop"]}
            for r in rows
            for task, t in r["tasks"].items()
            for side in SIDES
            if t[f"{side}_loop"]
        ],
        **{k: _mean([r[k] for r in rows]) for k in ("encoder_cosine", "encoder_sqnr_db", "decoder_top1_agreement")},
    }
    translated = [r for r in rows if "translate" in r["tasks"]]
    if translated and references is not None:
        refs = [references.get(r["sample"], "") for r in translated]
        fp = [r["tasks"]["translate"]["fp32_text"] for r in translated]
        q = [r["tasks"]["translate"]["int8_text"] for r in translated]
        out.update(
            bleu_fp32=metrics.bleu(refs, fp), bleu_int8=metrics.bleu(refs, q), bleu_int8_vs_fp32=metrics.bleu(fp, q)
        )
    return out


def overall(rows: list[dict], languages: dict[str, dict], references: dict[str, str] | None) -> dict:
    """Figures over every clip; the verdict is the languages' (each is judged alone)."""
    out = _figures(rows, references)
    ended = out["without_loops"]
    both = ended["wer_fp32"] is not None and ended["wer_int8"] is not None
    out["wer_increase"] = ended["wer_int8"] - ended["wer_fp32"] if both else None
    out["verdict"] = combine({lang: s["verdict"] for lang, s in languages.items()})
    out["verdicts_by_language"] = {lang: s["verdict"] for lang, s in languages.items()}
    return out


def latency_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(statistics.median(times))


def _latency(ctx, fp32_onnx: str, compiled: inference.Backend, settings: Settings) -> dict:
    from . import onnx_int8

    features = ctx.features[0]
    fp32_sess = onnx_int8.session(fp32_onnx, settings.threads)
    out = {
        "threads": settings.threads,
        "runs": settings.latency_runs,
        "encoder_fp32_torch_ms": latency_ms(lambda: ctx.fp32.encode(features), settings.latency_runs),
        "encoder_fp32_onnx_ms": latency_ms(lambda: onnx_int8.run_encoder(fp32_sess, features), settings.latency_runs),
        "encoder_int8_ms": latency_ms(lambda: compiled.encode(features), settings.latency_runs),
    }
    out["int8_speedup_vs_fp32_onnx"] = out["encoder_fp32_onnx_ms"] / out["encoder_int8_ms"]
    return out


# Held-out clips the per-node sensitivity runs on: the graphs run with every compute
# node's output exposed, so a few clips say where the error grows.
SENSITIVITY_CLIPS = 3


def sensitivity(ctx: inference.Context, reference: dict, graphs: dict[str, tuple[str, str]]) -> dict:
    """Per compute node of each part: the SQNR of its output in the INT8 graph against
    the FP32 graph (int8_recipe.node_sensitivity), on the first held-out clips; the
    decoder teacher-forced on the FP32 transcription with the FP32 encoder states."""
    from . import decoder_calibration as dec
    from . import int8_recipe, onnx_int8

    clips = range(min(SENSITIVITY_CLIPS, len(ctx.clips)))
    tables = dec.embedding_tables(ctx.model)
    feeds = {
        "encoder": [{onnx_int8.ENCODER_INPUT: ctx.features[i]} for i in clips],
        "decoder": [
            dict(
                zip(
                    onnx_int8.DECODER_INPUTS,
                    (
                        dec.decoder_input(tables, reference[ctx.clips[i].sample]["tasks"]["transcribe"]["tokens"]),
                        ctx.fp32_states[i],
                    ),
                )
            )
            for i in clips
        ],
    }
    return {part: int8_recipe.node_sensitivity(fp32, int8, feeds[part]) for part, (fp32, int8) in graphs.items()}


def evaluate(
    snapshot: str,
    manifests: list[str],
    reference_json: str,
    label_jsons: list[str],
    translation_json: str,
    fp32_encoder: str,
    compiled: Callable[[object], inference.Backend],
    settings: Settings,
    info: dict,
    graphs: dict[str, tuple[str, str]] | None = None,
) -> dict:
    """The quality report: per language and overall, per clip, latency. `compiled` makes
    the backend under test from the FP32 model (the ONNX INT8 pair, or the NPU)."""
    import torch

    torch.set_num_threads(settings.threads)
    ctx = inference.Context(snapshot, read_clips(manifests), manifests)
    reference = {r["sample"]: r for r in atomic.read_json(reference_json)["clips"]}
    by_label_model = {f.removesuffix(".wav"): label["translation"] for f, label in _labels(label_jsons).items()}
    english = atomic.read_json(translation_json)
    references = translation_references(english, by_label_model, ctx.clips)
    backend = compiled(ctx.model)
    rows = [_clip_row(ctx, backend, i, reference[c.sample], settings.max_new_tokens) for i, c in enumerate(ctx.clips)]
    languages = {
        lang: summary([r for r in rows if r["language"] == lang], settings, references)
        for lang in dict.fromkeys(c.lang for c in ctx.clips)
    }
    for lang, out in languages.items():
        if "translate" in out["verdicts"]:
            out["verdicts"]["translate"]["reference"] = english["languages"][lang]
    excluded = [
        {"sample": r["sample"], "reason": "no reference transcription in the source"}
        for r in rows
        if not (r["reference"] or "").strip()
    ]
    return {
        "note": NOTE,
        **info,
        "reference_text": "source raw_transcription, Whisper's normalizers (English for en, basic otherwise)",
        "translation_reference": {
            lang: english["languages"][lang]["kind"] for lang in languages if lang in english["languages"]
        },
        "decoding": {
            "mode": "greedy, no timestamps",
            "tasks": ctx.tasks(),
            "translate": "every clip but English ones",
            "max_new_tokens": settings.max_new_tokens,
        },
        "thresholds": {k: getattr(settings, k) for k in THRESHOLDS},
        "max_wer_increase": settings.max_wer_increase,
        "languages": languages,
        "overall": overall(rows, languages, references),
        "excluded_from_wer": excluded,
        "latency": _latency(ctx, fp32_encoder, backend, settings),
        # per node, where the ONNX pair's error grows (FP32 and INT8 graphs of each part)
        "sensitivity": sensitivity(ctx, reference, graphs) if graphs else None,
        "clips": rows,
    }


def translation_references(english: dict, by_label_model: dict[str, str], clips: list) -> dict[str, str]:
    """sample -> the English reference of its translation: the human one (FLEURS' en_us
    text of the same sentence id) for languages that have one for every clip, else the
    label model's translation (heldout.english_references decided which, and why)."""
    human = english["references"]
    out = {}
    for clip in clips:
        kind = english["languages"].get(clip.lang, {}).get("kind")
        text = human.get(clip.sample) if kind == "human" else by_label_model.get(clip.sample)
        if text:
            out[clip.sample] = text
    return out


def onnx_backend(encoder: str, decoder: str, threads: int) -> Callable[[object], inference.Backend]:
    return lambda model: inference.OnnxPath(encoder, decoder, model, threads)


def npu_backend(bundle: str) -> Callable[[object], inference.Backend]:
    """The compiled pair on a Mobilint card; refused with the reason where there is none."""
    from . import npu

    reason = npu.card_missing()
    if reason:
        raise RuntimeError(f"config key 'quality.backend' is npu, but {reason}")
    return lambda model: npu.NpuPath(bundle)


def settings_info(info: dict, encoder_list: str, decoder_json: str, precision: dict[str, str]) -> dict:
    """The report's header: model, backend, INT8 recipe and which nodes got which
    precision (the ONNX backend's), calibration set sizes."""
    from . import onnx_int8

    return {
        "model": info["model"],
        "backend": info["backend"],
        "calibration": {
            "method": info["method"],
            "per_channel": info["per_channel"],
            "recipe": info["recipe"],
            "encoder_list": encoder_list,
            "decoder_json": decoder_json,
            "encoder_samples": len(onnx_int8.encoder_calibration(encoder_list)),
            "decoder_samples": len(onnx_int8.decoder_calibration(decoder_json)),
        },
        "precision": {part: atomic.read_json(path) for part, path in precision.items()},
    }


def write_report(report: dict, out_json: str, pngs: list[str]) -> None:
    from . import plots

    plots.plot_report(report, *pngs)
    atomic.write_json(out_json, report)
