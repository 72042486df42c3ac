"""FP32 vs the `naive` and `default` INT8 recipes on the built tiny.en and held-out speech.

    python -m tests.realmodel.int8_compare BUILT_DIR WORK_DIR [--calibration N] [--eval N]

Quantizes the workflow's encoder and decoder graphs with both recipes from the
`validation` clips (encoder features; decoder embeddings of prompt + transcript over FP32
encoder states, as the workflow's calibration files hold them) and evaluates on the
`test` clips: encoder SQNR against FP32, teacher-forced decoder top-1 agreement with
FP32, greedy WER of each ONNX pair (FP32, naive, default; the same loop for all three),
INT8 coverage, file sizes, CPU encoder latency (same run), and the default recipe's
per-node sensitivity. Prints and writes WORK_DIR/int8_compare.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import onnx_harness as H

PARTS = ("encoder", "decoder")
RECIPES = ("naive", "default")


def quantize_all(
    model: H.Model, fp32: dict[str, Path], calibration: list[H.Clip], work: Path, recipes: tuple[str, ...] = RECIPES
) -> tuple[dict, dict]:
    from whisper_mxq import int8_recipe

    feeds = {"encoder": H.encoder_feeds(calibration), "decoder": H.decoder_feeds(model, calibration)}
    paths, described = {}, {}
    for recipe in recipes:
        for part in PARTS:
            out = work / f"{part}.{recipe}.onnx"
            t0 = time.perf_counter()
            described[(recipe, part)] = int8_recipe.quantize(str(fp32[part]), str(out), H.reader(feeds[part]), recipe)
            described[(recipe, part)]["seconds"] = round(time.perf_counter() - t0, 1)
            paths[(recipe, part)] = out
    return paths, described


def evaluate(
    model: H.Model, pair: H.Pair, reference: H.Pair | None, clips: list[H.Clip], greedy: bool = True
) -> dict[str, Any]:
    """Against FP32: encoder SQNR, decoder top-1 agreement (on FP32 states and the
    reference's teacher-forced choices), and greedy transcripts of the whole pair."""
    sqnr, agree, texts = [], [], []
    for clip in clips:
        states = pair.encode(clip.features)
        sqnr.append(H.sqnr_db(clip.states, states))
        if reference is not None:
            ref = reference.choices(clip.tokens, clip.states)
            agree.append(float(np.mean(pair.choices(clip.tokens, clip.states) == ref)))
        if greedy:
            texts.append(model.text(pair.greedy(states)))
    out: dict[str, Any] = {"encoder_sqnr_db": float(np.mean(sqnr)), "encoder_sqnr_db_min": float(np.min(sqnr))}
    if agree:
        out["decoder_top1_agreement"] = float(np.mean(agree))
    if greedy:
        out["wer"] = H.wer([c.transcript for c in clips], texts)
        out["texts"] = texts
    return out


def latency(paths: dict[str, Path], clip: H.Clip, runs: int, threads: int) -> dict[str, float]:
    """Median encoder time of each graph, interleaved in one run so load affects all alike."""
    sessions = {name: H.session(p, threads) for name, p in paths.items()}
    feed = {"input_features": clip.features}
    for s in sessions.values():
        s.run(None, feed)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feed)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: float(np.median(t)) for name, t in times.items()}


def compare(
    built: Path,
    work: Path,
    n_calibration: int | None = None,
    n_eval: int | None = None,
    latency_runs: int = 5,
    threads: int = 1,
) -> dict[str, Any]:
    from whisper_mxq import int8_recipe

    from .build import CALIBRATION_SPLIT, EVAL_SPLIT, MODEL_DIR

    work.mkdir(parents=True, exist_ok=True)
    model = H.Model(built / MODEL_DIR)
    calibration = H.load_clips(model, built, CALIBRATION_SPLIT)[:n_calibration]
    clips = H.load_clips(model, built, EVAL_SPLIT)[:n_eval]
    fp32 = H.export(model, work)
    paths, described = quantize_all(model, fp32, calibration, work)
    reference = H.Pair(model, fp32["encoder"], fp32["decoder"], threads)
    result: dict[str, Any] = {
        "calibration_clips": len(calibration),
        "eval_clips": len(clips),
        "fp32": evaluate(model, reference, None, clips),
        "recipes": {},
    }
    for recipe in RECIPES:
        pair = H.Pair(model, paths[(recipe, "encoder")], paths[(recipe, "decoder")], threads)
        result["recipes"][recipe] = {
            **evaluate(model, pair, reference, clips),
            **{f"{part}_{k}": described[(recipe, part)][k] for part in PARTS for k in ("coverage", "seconds")},
            **{f"{part}_mb": round(H.size_mb(paths[(recipe, part)]), 2) for part in PARTS},
            "nodes": {part: described[(recipe, part)]["nodes"] for part in PARTS},
        }
        result["recipes"][recipe]["wer_increase"] = result["recipes"][recipe]["wer"] - result["fp32"]["wer"]
    result["fp32"].update({f"{part}_mb": round(H.size_mb(fp32[part]), 2) for part in PARTS})
    lat = latency(
        {"fp32": fp32["encoder"], **{r: paths[(r, "encoder")] for r in RECIPES}}, clips[0], latency_runs, threads
    )
    result["encoder_latency_ms"] = {
        **lat,
        "threads": threads,
        "runs": latency_runs,
        "default_vs_fp32": lat["default"] / lat["fp32"],
        "default_vs_naive": lat["default"] / lat["naive"],
        "naive_vs_fp32": lat["naive"] / lat["fp32"],
    }
    result["sensitivity"] = {
        recipe: int8_recipe.node_sensitivity(
            str(fp32["encoder"]), str(paths[(recipe, "encoder")]), H.encoder_feeds(clips[:2])
        )
        for recipe in RECIPES
    }
    result["default_reasons"] = {
        part: {n: d["reason"] for n, d in described[("default", part)]["node_details"].items() if d["reason"]}
        for part in PARTS
    }
    return result


def main(argv: list[str] | None = None) -> None:
    from whisper_mxq.atomic import write_json

    parser = argparse.ArgumentParser(prog="python -m tests.realmodel.int8_compare")
    parser.add_argument("built", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--calibration", type=int, default=None)
    parser.add_argument("--eval", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    result = compare(args.built, args.work, args.calibration, args.eval, threads=args.threads)
    write_json(args.work / "int8_compare.json", result)
    summary = {
        k: {m: v for m, v in r.items() if m not in ("texts", "nodes")}
        for k, r in [("fp32", result["fp32"]), *result["recipes"].items()]
    }
    print(json.dumps({"summary": summary, "latency": result["encoder_latency_ms"]}, indent=1))


if __name__ == "__main__":
    main()
