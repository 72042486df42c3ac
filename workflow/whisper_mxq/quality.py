"""What quantization costs: FP32 PyTorch vs the INT8 ONNX pair on held-out FLEURS clips.

Held-out means never in the calibration set: evaluation clips are read from their own
split (FLEURS `test` by default) and any clip whose sentence was calibrated on is
skipped, so even the calibration split itself can serve (the offline demo does that).

Both paths decode greedily with the same loop, prompt `<|sot|><|xx|><|transcribe|>
<|notimestamps|>` and the same rule (argmax over text tokens and end-of-text); only the
backend differs. The INT8 path computes embeddings on the host, as the NPU runtime does.

References: the FLEURS `raw_transcription` of each held-out clip (the human reference;
the label model never sees evaluation clips), normalized with Whisper's normalizers.
WER/CER of INT8 against the FP32 output is reported as well: the cost of quantization
alone, meaningful even when the model itself transcribes badly.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from . import atomic, audio, calibration, data, layout, onnx_int8
from .languages import whisper_code

NOTE = (
    "INT8 (ONNX Runtime, static, calibrated on the workflow's calibration files) vs FP32 "
    "(PyTorch) on held-out clips. Numbers from a tiny random model (the offline demo) mean "
    "little: it transcribes nothing, so only the INT8-vs-FP32 columns say anything there. "
    "With a real checkpoint the same rules give real numbers. ONNX Runtime's INT8 is not "
    "the NPU's quantizer: treat this as a check of the calibration data, not a prediction "
    "of the .mxq's accuracy."
)
# Per-language and overall fields of the report; tests check every one is present.
METRICS = (
    "clips",
    "wer_fp32", "wer_int8", "cer_fp32", "cer_int8",
    "wer_int8_vs_fp32", "cer_int8_vs_fp32",
    "encoder_cosine", "encoder_sqnr_db", "decoder_top1_agreement",
)
MIXES = ("all", "transcribe")  # sweep: every calibration sample, or no translation samples


# --- held-out clips ---------------------------------------------------------------------
def held_out(rows: Iterable[dict], calibration_manifest: dict) -> Iterator[dict]:
    """Rows whose sentence is not in the calibration set (FLEURS reads each sentence
    several times, so the text, not the clip, is what must not repeat)."""
    used = {s["raw_transcription"].strip() for s in calibration_manifest["samples"]}
    return (r for r in rows if r["raw_transcription"].strip() not in used)


def download_eval(source: data.Source, lang: str, wav_paths: list[str], manifest_path: str,
                  calibration_manifest: str,
                  max_skipped_fraction: float = data.MAX_SKIPPED_FRACTION) -> dict:
    whisper_code(lang)
    rows = held_out(data.stream_rows(source, lang), atomic.read_json(calibration_manifest))
    where = f"{source.location} ({source.split}, held out from calibration)"
    return data.download_language(rows, lang, wav_paths, manifest_path, where, max_skipped_fraction)


@dataclass(frozen=True)
class Clip:
    sample: str
    lang: str
    wav: str
    reference: str


def clips(manifests: list[str], wav_dir_pattern: str = layout.EVAL_AUDIO) -> list[Clip]:
    """Evaluation clips in manifest order, with their FLEURS reference text."""
    out = []
    for path in manifests:
        manifest = atomic.read_json(path)
        for s in manifest["samples"]:
            sample = s["file"].removesuffix(".wav")
            out.append(Clip(sample, manifest["language"], wav_dir_pattern.format(sample=sample),
                            s["raw_transcription"]))
    return out


# --- metrics ---------------------------------------------------------------------------
def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio, 10 log10(|x|^2 / |x - y|^2), in dB."""
    noise = float(np.sum((reference.astype(np.float64) - test) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(signal / noise)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def normalizer(lang: str) -> Callable[[str], str]:
    """Whisper's own: the English normalizer for English, the basic one elsewhere."""
    from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

    return EnglishTextNormalizer() if whisper_code(lang) == "en" else BasicTextNormalizer()


def error_rates(references: list[str], hypotheses: list[str]) -> tuple[float, float]:
    """Corpus WER and CER; pairs whose reference normalizes to nothing are left out."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return float("nan"), float("nan")
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    return float(jiwer.wer(refs, hyps)), float(jiwer.cer(refs, hyps))


def top1_agreement(tokens: list[int], start: int, logits: np.ndarray, eot: int) -> float:
    """Share of positions where the INT8 decoder, fed the FP32 path's tokens, picks the
    token the FP32 path picked (greedy FP32 = its own teacher-forced argmax)."""
    chosen = np.argmax(logits[start - 1 : len(tokens) - 1, : eot + 1], axis=-1)
    return float(np.mean(chosen == np.asarray(tokens[start:]))) if len(tokens) > start else 1.0


# --- the two paths ---------------------------------------------------------------------
def greedy(logits: Callable[[list[int]], np.ndarray], prompt: list[int], eot: int,
           max_new: int, max_len: int) -> list[int]:
    """prompt + argmax tokens over text and end-of-text (no timestamps, no specials)."""
    ids = list(prompt)
    while len(ids) - len(prompt) < max_new and len(ids) < max_len:
        ids.append(int(np.argmax(logits(ids)[-1, : eot + 1])))
        if ids[-1] == eot:
            break
    return ids


class TorchPath:
    """The float32 model as loaded for calibration."""

    def __init__(self, model):
        self.model = model

    def encode(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(features).transpose(1, 2)
            return self.model.get_encoder()(x).last_hidden_state.numpy()

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(encoder_outputs=(torch.from_numpy(states),),
                             decoder_input_ids=torch.tensor([ids]), use_cache=False)
        return out.logits[0].numpy()


class OnnxPath:
    """An ONNX encoder/decoder pair; the host adds token and position embeddings."""

    def __init__(self, encoder: str, decoder: str, model, threads: int = 1):
        self.encoder = onnx_int8.session(encoder, threads)
        self.decoder = onnx_int8.session(decoder, threads)
        self.tables = calibration.embedding_tables(model)

    def encode(self, features: np.ndarray) -> np.ndarray:
        return onnx_int8.run_encoder(self.encoder, features)

    def logits(self, ids: list[int], states: np.ndarray) -> np.ndarray:
        return onnx_int8.run_decoder(self.decoder, calibration.decoder_input(self.tables, ids), states)[0]


@dataclass(frozen=True)
class Settings:
    max_new_tokens: int = 128
    latency_runs: int = 5
    threads: int = 1


class Context:
    """What every evaluation needs once: model, tokenizer, features of the clips."""

    def __init__(self, snapshot: str, eval_clips: list[Clip]):
        from .models import load_model, load_processor

        self.model = load_model(snapshot)
        processor = load_processor(snapshot)
        self.tokenizer = processor.tokenizer
        self.eot = self.tokenizer.eos_token_id
        # the calibration's rule, so evaluation prompts the model as calibration did
        self.multilingual = calibration.is_multilingual(self.model)
        self.clips = eval_clips
        fe = processor.feature_extractor
        self.features = [calibration.encoder_features(fe, audio.load(c.wav)) for c in eval_clips]
        self.fp32 = TorchPath(self.model)
        self.fp32_states = [self.fp32.encode(f) for f in self.features]

    def prompt(self, clip: Clip) -> list[int]:
        return calibration.prompt(self.tokenizer, whisper_code(clip.lang), "transcribe",
                                  self.multilingual).ids

    def decode(self, path, states: np.ndarray, clip: Clip, max_new: int) -> list[int]:
        return greedy(lambda ids: path.logits(ids, states), self.prompt(clip), self.eot,
                      max_new, self.model.config.max_target_positions)

    def text(self, ids: list[int]) -> str:
        # The prompt's tokens are all special (ids above end-of-text): text_ids drops them.
        return self.tokenizer.decode(calibration.text_ids(ids, self.eot)).strip()


# --- FP32 reference ----------------------------------------------------------------------
def write_reference(snapshot: str, manifests: list[str], out_json: str, settings: Settings) -> dict:
    """Greedy FP32 tokens of every held-out clip, computed once for the report and sweep."""
    import torch

    torch.set_num_threads(settings.threads)
    ctx = Context(snapshot, clips(manifests))
    rows = []
    for clip, states in zip(ctx.clips, ctx.fp32_states):
        ids = ctx.decode(ctx.fp32, states, clip, settings.max_new_tokens)
        rows.append({"sample": clip.sample, "tokens": ids, "text": ctx.text(ids)})
    result = {"max_new_tokens": settings.max_new_tokens, "clips": rows}
    atomic.write_json(out_json, result)
    return result


# --- evaluation ---------------------------------------------------------------------------
def _clip_metrics(ctx: Context, int8: OnnxPath, i: int, ref_tokens: list[int], greedy_int8: bool,
                  max_new: int) -> dict:
    clip, states = ctx.clips[i], ctx.fp32_states[i]
    int8_states = int8.encode(ctx.features[i])
    start = len(ctx.prompt(clip))
    row = {
        "sample": clip.sample,
        "language": clip.lang,
        "encoder_cosine": cosine(states, int8_states),
        "encoder_sqnr_db": sqnr_db(states, int8_states),
        # FP32 encoder states: this isolates the decoder's own quantization.
        "decoder_top1_agreement": top1_agreement(ref_tokens, start, int8.logits(ref_tokens, states), ctx.eot),
    }
    if greedy_int8:
        row["int8_text"] = ctx.text(ctx.decode(int8, int8_states, clip, max_new))
    return row


def _summary(rows: list[dict], ctx: Context) -> dict:
    by_sample = {c.sample: c for c in ctx.clips}
    norm = {lang: normalizer(lang) for lang in {r["language"] for r in rows}}

    def texts(key: str) -> list[str]:
        return [norm[r["language"]](r[key]) for r in rows]

    refs = [norm[r["language"]](by_sample[r["sample"]].reference) for r in rows]
    wer_fp32, cer_fp32 = error_rates(refs, texts("fp32_text"))
    wer_int8, cer_int8 = error_rates(refs, texts("int8_text"))
    wer_vs, cer_vs = error_rates(texts("fp32_text"), texts("int8_text"))
    return {
        "clips": len(rows),
        "wer_fp32": wer_fp32, "wer_int8": wer_int8, "cer_fp32": cer_fp32, "cer_int8": cer_int8,
        "wer_int8_vs_fp32": wer_vs, "cer_int8_vs_fp32": cer_vs,
        **{k: float(np.mean([r[k] for r in rows]))
           for k in ("encoder_cosine", "encoder_sqnr_db", "decoder_top1_agreement")},
    }


def latency_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(statistics.median(times))


def _latency(ctx: Context, fp32_onnx: str, int8: OnnxPath, settings: Settings) -> dict:
    features = ctx.features[0]
    fp32_sess = onnx_int8.session(fp32_onnx, settings.threads)
    out = {
        "threads": settings.threads,
        "runs": settings.latency_runs,
        "encoder_fp32_torch_ms": latency_ms(lambda: ctx.fp32.encode(features), settings.latency_runs),
        "encoder_fp32_onnx_ms": latency_ms(lambda: onnx_int8.run_encoder(fp32_sess, features), settings.latency_runs),
        "encoder_int8_onnx_ms": latency_ms(lambda: int8.encode(features), settings.latency_runs),
    }
    out["int8_speedup_vs_fp32_onnx"] = out["encoder_fp32_onnx_ms"] / out["encoder_int8_onnx_ms"]
    return out


def evaluate(snapshot: str, manifests: list[str], reference_json: str, fp32_encoder: str,
             int8_encoder: str, int8_decoder: str, settings: Settings, info: dict) -> dict:
    """The quality report: per language and overall, plus per clip and latency."""
    import torch

    torch.set_num_threads(settings.threads)
    ctx = Context(snapshot, clips(manifests))
    reference = {r["sample"]: r for r in atomic.read_json(reference_json)["clips"]}
    int8 = OnnxPath(int8_encoder, int8_decoder, ctx.model, settings.threads)
    rows = []
    for i, clip in enumerate(ctx.clips):
        ref = reference[clip.sample]
        row = _clip_metrics(ctx, int8, i, ref["tokens"], True, settings.max_new_tokens)
        rows.append({**row, "reference": clip.reference, "fp32_text": ref["text"]})
    languages = {lang: _summary([r for r in rows if r["language"] == lang], ctx)
                 for lang in dict.fromkeys(c.lang for c in ctx.clips)}
    return {
        "note": NOTE,
        **info,
        "reference_text": "FLEURS raw_transcription, Whisper's normalizers (English for en, basic otherwise)",
        "decoding": {"mode": "greedy, transcribe, no timestamps", "max_new_tokens": settings.max_new_tokens},
        "languages": languages,
        "overall": _summary(rows, ctx),
        "latency": _latency(ctx, fp32_encoder, int8, settings),
        "clips": rows,
    }


# --- sweep -------------------------------------------------------------------------------------
def sweep_sizes(total: int, sizes: list[int] | None) -> list[int]:
    """1, 2, 4, ... below `total`, then `total` itself; or the configured sizes."""
    if sizes:
        return sorted({min(s, total) for s in sizes})
    out = [1 << k for k in range(total.bit_length()) if 1 << k < total]
    return out + [total]


def sweep_subset(decoder_json: str, size: int, mix: str) -> list[str]:
    """`size` calibration samples spread over languages (round robin in file order),
    without the translation samples when mix is `transcribe`."""
    entries = [e for e in onnx_int8.decoder_calibration(decoder_json)
               if mix == "all" or not e["use_translation"]]
    by_lang: dict[str, list[str]] = {}
    for e in entries:
        by_lang.setdefault(layout.sample_lang(e["sample"]), []).append(e["sample"])
    order = [s for rank in range(max(map(len, by_lang.values()), default=0))
             for samples in by_lang.values() if rank < len(samples) for s in samples[rank : rank + 1]]
    return order[:size]


def sweep_point(snapshot: str, manifests: list[str], reference_json: str, fp32: dict[str, str],
                calib: dict[str, str], size: int, mix: str, method: str, per_channel: bool,
                work_dir: str, threads: int = 1) -> dict:
    """Quantize both parts from a subset of the calibration set; encoder and decoder
    agreement with FP32 on the held-out clips (no greedy decoding: that is the report's)."""
    import torch

    torch.set_num_threads(threads)
    samples = sweep_subset(calib["decoder"], size, mix)
    os.makedirs(work_dir, exist_ok=True)
    int8 = {part: os.path.join(work_dir, f"{part}.int8.onnx") for part in layout.PARTS}
    for part in layout.PARTS:
        onnx_int8.quantize_part(part, fp32[part], calib[part], int8[part], method, per_channel, samples)
    ctx = Context(snapshot, clips(manifests))
    reference = {r["sample"]: r for r in atomic.read_json(reference_json)["clips"]}
    path = OnnxPath(int8["encoder"], int8["decoder"], ctx.model, threads)
    rows = [_clip_metrics(ctx, path, i, reference[c.sample]["tokens"], False, 0)
            for i, c in enumerate(ctx.clips)]
    keys = ("encoder_cosine", "encoder_sqnr_db", "decoder_top1_agreement")
    return {"size": size, "mix": mix, "samples": samples, "calibration_samples": len(samples),
            **{k: float(np.mean([r[k] for r in rows])) for k in keys}}


# --- outputs ------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def plot_report(report: dict, wer_png: str, encoder_png: str, latency_png: str) -> None:
    plt = _pyplot()
    langs = list(report["languages"]) + ["overall"]
    rows = [report["languages"][l] for l in langs[:-1]] + [report["overall"]]
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(6, len(langs)), 4))
    for k, (key, label) in enumerate([("wer_fp32", "FP32 vs reference"), ("wer_int8", "INT8 vs reference"),
                                      ("wer_int8_vs_fp32", "INT8 vs FP32")]):
        ax.bar(x + (k - 1) * 0.27, [r[key] for r in rows], 0.27, label=label)
    ax.set_xticks(x, langs, rotation=30)
    ax.set_ylabel("WER")
    ax.set_title(f"{report['model']}: word error rate on held-out clips")
    ax.legend()
    _save(fig, wer_png)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(max(8, 1.5 * len(langs)), 4))
    a1.bar(x, [r["encoder_sqnr_db"] for r in rows])
    a1.set_xticks(x, langs, rotation=30)
    a1.set_ylabel("encoder SQNR (dB)")
    a2.bar(x, [r["decoder_top1_agreement"] for r in rows], color="tab:orange")
    a2.set_xticks(x, langs, rotation=30)
    a2.set_ylabel("decoder top-1 agreement")
    a2.set_ylim(0, 1)
    fig.suptitle(f"{report['model']}: INT8 agreement with FP32")
    _save(fig, encoder_png)
    plt.close(fig)

    lat = report["latency"]
    names = ["FP32 PyTorch", "FP32 ONNX", "INT8 ONNX"]
    values = [lat["encoder_fp32_torch_ms"], lat["encoder_fp32_onnx_ms"], lat["encoder_int8_onnx_ms"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(names, values, color=["tab:gray", "tab:blue", "tab:green"])
    ax.set_ylabel(f"encoder latency, ms (median of {lat['runs']}, {lat['threads']} threads)")
    ax.set_title(f"{report['model']}: CPU encoder latency")
    _save(fig, latency_png)
    plt.close(fig)


def write_report(report: dict, out_json: str, pngs: list[str]) -> None:
    plot_report(report, *pngs)
    atomic.write_json(out_json, report)


def write_sweep(points: list[dict], out_json: str, out_png: str, info: dict) -> dict:
    plt = _pyplot()
    result = {"note": NOTE, **info, "points": sorted(points, key=lambda p: (p["mix"], p["size"]))}
    keys = [("encoder_sqnr_db", "encoder SQNR (dB)"), ("encoder_cosine", "encoder cosine"),
            ("decoder_top1_agreement", "decoder top-1 agreement")]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4))
    for ax, (key, label) in zip(axes, keys):
        for mix in MIXES:
            pts = [p for p in result["points"] if p["mix"] == mix]
            if pts:
                ax.plot([p["calibration_samples"] for p in pts], [p[key] for p in pts], "o-",
                        label="with translation" if mix == "all" else "transcription only")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("calibration samples")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"{info.get('model', '')}: INT8 quality vs calibration set size")
    _save(fig, out_png)
    plt.close(fig)
    atomic.write_json(out_json, result)
    return result


def settings_info(info: dict, encoder_list: str, decoder_json: str) -> dict:
    """The report's header fields: model, calibration method and set sizes."""
    return {"model": info["model"], "calibration": {
        "method": info["method"], "per_channel": info["per_channel"],
        "encoder_list": encoder_list, "decoder_json": decoder_json,
        "encoder_samples": len(onnx_int8.encoder_calibration(encoder_list)),
        "decoder_samples": len(onnx_int8.decoder_calibration(decoder_json)),
    }}
