"""Race the tutorial's step-2 loop against the workflow's calibration, side by side.

One invocation, same clips, same model. Each contender runs in its own Python process
(so clips/s are end to end: interpreter start, imports, model loads included, and the
peak RSS is its own); repeats are interleaved (loop, workflow, loop, workflow, ...)
so a noisy shared machine hits both alike, and the median is reported.

Contenders
  loop      the tutorial's create_calibration.py as the seed describes it: one process,
            one clip at a time: librosa load, processor features, encoder forward,
            generate the transcription AND the translation, normalise, draw the task
            (80/20), embeddings, np.save.
  package   the workflow's package functions as the rules call them: per job of
            samples_per_job consecutive clips, calibrate_job (encoder features
            and decoder files) in a process of its own, as one calibrate rule job.
  snakemake (demo only) the real `snakemake -j2 ... calibration` on a copy of a finished
            demo run with calibration/ removed: every job's process start included.

Usage
  CPU, offline demo (a finished demo run as input, e.g. from the offline demo):
    python tests/benchmarks/race.py demo --run DIR [--repeats 3]
  GPU, whisper-small shape, random weights, exactly 64 new tokens per decode:
    python tests/benchmarks/race.py small --clips 128 --loop-clips 16 \
        --variants fp32:16,fp16:16,fp16:32,fp16:64
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # calib_helpers: test-only drivers of the steps
SAMPLE_RATE = 16000


# --- contenders (each runs in a child process: `race.py _run -`, its spec on stdin) ------------------
def tutorial_loop(
    snapshot: str, wavs: list[str], out: str, device: str, max_new_tokens: int, tasks_per_clip: int = 2, seed: int = 0
) -> None:
    """The seed's step 2, clip by clip, with transformers as the tutorial pins it."""
    import numpy as np
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        import librosa

        def load(p):
            return librosa.load(p, sr=SAMPLE_RATE)[0]
    except ImportError:  # the GPU host may lack librosa; the clips are 16 kHz already
        import soundfile as sf

        def load(p):
            return sf.read(p, dtype="float32")[0]

    from whisper_mxq.languages import whisper_code

    processor = WhisperProcessor.from_pretrained(snapshot)
    model = WhisperForConditionalGeneration.from_pretrained(snapshot).to(device).eval()
    tok = processor.tokenizer
    # processor.tokenizer.normalize as the seed calls it; checkpoints without the
    # spelling table (normalizer.json, as random test models) get the basic normalizer
    normalize = tok.normalize if getattr(tok, "english_spelling_normalizer", None) else tok.basic_normalize
    decoder = model.get_decoder()
    rng = random.Random(seed)  # the seed drew from the global RNG, unseeded
    os.makedirs(f"{out}/encoder", exist_ok=True)
    for i, wav in enumerate(wavs):
        lang = whisper_code(Path(wav).stem.rsplit("_", 1)[0])
        feats = processor(load(wav), sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        np.save(f"{out}/encoder/encoder_calib_{i}.npy", feats.transpose(1, 2).numpy())
        feats = feats.to(device)
        with torch.no_grad():
            enc = model.get_encoder()(feats).last_hidden_state
            texts = {}
            for task in ("transcribe", "translate")[:tasks_per_clip]:
                ids = model.generate(feats, language=lang, task=task, max_new_tokens=max_new_tokens)
                texts[task] = normalize(tok.decode(ids[0], skip_special_tokens=True)).strip()
            task = "translate" if rng.random() < 0.2 and "translate" in texts else "transcribe"
            prompt = tok.convert_tokens_to_ids(
                ["<|startoftranscript|>", f"<|{lang}|>", f"<|{task}|>", "<|notimestamps|>"]
            )
            ids = prompt + tok.encode(texts[task], add_special_tokens=False) + [tok.eos_token_id]
            ids = ids[: model.config.max_target_positions]
            tokens = torch.tensor([ids], device=device)
            emb = decoder.embed_tokens(tokens) + decoder.embed_positions.weight[: len(ids)]
        folder = f"{out}/decoder/sample_{i}"
        os.makedirs(folder, exist_ok=True)
        np.save(f"{folder}/encoder_hidden_states.npy", enc.cpu().numpy())
        np.save(f"{folder}/decoder_hidden_states.npy", emb.cpu().numpy())


def package_jobs(
    snapshot: str, wavs: list[str], out: str, device: str, settings: dict, per_job: int, threads: int, at_once: int = 1
) -> dict:
    """The rules' work: per job (per_job consecutive clips of the language-major list,
    which is how jobs.plan cuts them) calibrate_job as the calibrate rule
    calls it, each job in a process of its own, one after the other (as Snakemake runs
    `script:` jobs, and as jobs queue on one GPU): every job pays interpreter start,
    imports, CUDA start and model load. `at_once` > 1 runs that many jobs at a time, as
    Snakemake would given that many GPU slots for one GPU: one job's start-up overlaps
    another's GPU work. Returns the largest GPU peak of the jobs."""
    from concurrent.futures import ThreadPoolExecutor

    from whisper_mxq import layout

    samples = [Path(w).stem for w in wavs]
    langs = list(dict.fromkeys(layout.sample_lang(s) for s in samples))
    order = sorted(range(len(samples)), key=lambda i: (langs.index(layout.sample_lang(samples[i])), samples[i]))
    specs = []
    for start in range(0, len(order), per_job):
        job = order[start : start + per_job]
        specs.append(
            dict(
                kind="job",
                snapshot=snapshot,
                samples=[samples[i] for i in job],
                wavs=[wavs[i] for i in job],
                npys=[f"{out}/encoder/encoder_calib_{samples[i]}.npy" for i in job],
                dirs=[f"{out}/decoder/sample_{samples[i]}" for i in job],
                device=device,
                settings=settings,
                threads=threads,
            )
        )
    with ThreadPoolExecutor(at_once) as pool:
        results = list(pool.map(run_child, specs))
    return {"gpu_mb": max(r.get("gpu_mb", 0.0) for r in results)}


def calibrate_job(
    snapshot: str,
    samples: list[str],
    wavs: list[str],
    npys: list[str],
    dirs: list[str],
    device: str,
    settings: dict,
    threads: int,
    out: str | None = None,
) -> None:
    """One calibrate rule job (workflow/scripts/calibrate.py's call) over a download
    job's manifest of these clips."""
    from whisper_mxq import calibration

    from calib_helpers import calib_settings, manifest_for

    job = Path(dirs[0]).parent / f".job_{samples[0]}"
    manifest, stamp = manifest_for(wavs, job)
    calibration.calibrate_job(
        snapshot,
        manifest,
        stamp,
        npys,
        dirs,
        str(job / "summary.json"),
        calib_settings(**settings),
        device=device,
        threads=threads,
    )


def agreement(snapshot: str, wavs: list[str], out: str, device: str, tokens: int, batch: int = 16) -> dict:
    """Batch vs one-clip runs of calibrate_decoder, per generation dtype: the share of
    samples whose token ids are identical, and the largest relative error of the saved
    fp32 encoder states (norm of the difference over the norm)."""
    import numpy as np

    from calib_helpers import calib_settings, calibrate_decoder, calibrate_encoder

    samples = [Path(w).stem for w in wavs]
    npys = [f"{out}/encoder/{s}.npy" for s in samples]
    calibrate_encoder(snapshot, wavs, npys)
    report = {}
    for dtype in ("fp32", "fp16"):
        runs = {}
        for b in (1, batch):
            dirs = [f"{out}/{dtype}_{b}/{s}" for s in samples]
            # one job: batches of b mix the languages; at b=1 one graph serves every clip
            calibrate_decoder(
                snapshot,
                samples,
                npys,
                dirs,
                calib_settings(max_new_tokens=tokens, batch_size=b, dtype=dtype),
                device=device,
            )
            runs[b] = dirs
        same, rel = 0, 0.0
        for one, many in zip(runs[1], runs[batch]):
            ids1 = json.loads(Path(one, "tokens.json").read_text())["token_ids"]
            idsb = json.loads(Path(many, "tokens.json").read_text())["token_ids"]
            same += ids1 == idsb
            for name in ("encoder_hidden_states.npy",):
                a, b_ = np.load(Path(one, name)), np.load(Path(many, name))
                rel = max(rel, float(np.linalg.norm(a - b_) / np.linalg.norm(a)))
        report[dtype] = {"identical_token_ids": f"{same}/{len(samples)}", "max_rel_err_encoder_states": rel}
    return report


def snakemake_run(run_dir: str, out: str, configfile: str, per_job: int) -> None:
    """The real workflow on a copy of a finished demo run, calibration/ removed."""
    work = Path(out) / "run"
    shutil.copytree(run_dir, work, symlinks=True)
    shutil.rmtree(work / "calibration")
    override = Path(out) / "per_job.yaml"
    override.write_text(f"calibration: {{samples_per_job: {per_job}}}\n")
    extra = ["--configfile", configfile, str(override)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO / "workflow"))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(work),
        "-j2",
        *extra,
        "--rerun-triggers=mtime",
        "calibration",
    ]  # `=`: ends the nargs+ lists
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-4000:])


def _child(spec: dict) -> None:
    import logging

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # a calibrate job logs where its time went; run_child passes those lines on
    logging.basicConfig(stream=sys.stdout, format="JOB %(message)s")
    logging.getLogger("whisper_mxq.calibration").setLevel(logging.INFO)
    t0 = time.perf_counter()
    kind = spec.pop("kind")
    result = {}
    if kind == "loop":
        tutorial_loop(**spec)
    elif kind == "package":
        result = package_jobs(**spec)
    elif kind == "job":
        calibrate_job(**spec)
    elif kind == "agree":
        print("AGREE " + json.dumps(agreement(**spec)))
    else:
        snakemake_run(**spec)
    result.update(
        {
            "work_s": time.perf_counter() - t0,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    )
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        result["gpu_mb"] = max(result.get("gpu_mb", 0.0), sys.modules["torch"].cuda.max_memory_allocated() / 2**20)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(spec: dict) -> dict:
    """`race.py _run SPEC` in a new process; its RESULT, with its wall time."""
    t0 = time.perf_counter()
    # the spec on stdin: a job's thousands of paths overflow an argument list
    proc = subprocess.run(
        [sys.executable, __file__, "_run", "-"], input=json.dumps(spec), capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{spec['kind']} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}")
    for row in proc.stdout.splitlines():
        if row.startswith("AGREE "):
            print(f"batch vs one-clip agreement ({len(spec['wavs'])} clips): {row[6:]}", flush=True)
        elif row.startswith("JOB ") and spec["kind"] == "job":  # up to the race's own output
            print(f"{row} (process {wall:.1f} s)", flush=True)
        elif row.startswith("JOB "):
            print(f"    {row[4:]}", file=sys.stderr, flush=True)
    line = next(row for row in proc.stdout.splitlines() if row.startswith("RESULT "))
    return dict(json.loads(line[7:]), wall_s=wall)


def run_contender(spec: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="race.") as out:
        return run_child(dict(spec, out=out))


# --- data and models -------------------------------------------------------------------
def synthetic_clips(folder: Path, n: int, langs: list[str]) -> list[str]:
    """n clips of 5-15 s (chirps and noise), named like the workflow's sample ids."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        lang = langs[i % len(langs)]
        rng = np.random.default_rng(i)
        t = np.arange(int(SAMPLE_RATE * rng.uniform(5, 15))) / SAMPLE_RATE
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t * (1 + 0.2 * t)) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"{lang}_{i // len(langs):04d}.wav"
        sf.write(path, x.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        paths.append(str(path))
    return paths


def small_model(folder: Path, processor_dir: str | None = None, tiny: bool = False) -> str:
    """whisper-small's shape (d 768, 12+12 layers, 80 mels), random weights, the real
    multilingual tokenizer; end-of-text and every id above it suppressed, so every decode
    is max_new_tokens text tokens long, with generate and the workflow alike (a random
    model otherwise emits timestamp tokens, on which Whisper's generate decodes further
    segments)."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    from whisper_mxq import demo

    if processor_dir:  # prebuilt where openai-whisper (the tokenizer's source) is missing
        processor = WhisperProcessor.from_pretrained(processor_dir)
        from transformers import GenerationConfig

        generation = GenerationConfig.from_pretrained(processor_dir)
    else:
        tok = demo.build_tokenizer()
        from transformers import WhisperFeatureExtractor

        processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok)
        generation = demo._generation_config(tok, english_only=False)
    tok = processor.tokenizer
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    generation.suppress_tokens = list(range(eot, len(tok)))  # fixed decode length
    width, layers, heads = (64, 1, 2) if tiny else (768, 12, 12)  # tiny: a CPU rehearsal
    cfg = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=80,
        d_model=width,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg).eval()
    model.generation_config = generation
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def generate_ids(model, states, prompt: list[int], tokens: int) -> list[list[int]]:
    """transformers' Whisper `generate` (German, transcribe) from encoder states: each
    row's generated ids without the prompt (transformers 4 returns it, 5 does not), the
    reference decoding.greedy is checked against."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    with torch.no_grad():
        out = model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=states),
            language="de",
            task="transcribe",
            max_new_tokens=tokens,
        ).tolist()
    return [row[len(prompt) :] if row[: len(prompt)] == prompt else row for row in out]


# --- the race ----------------------------------------------------------------------------
def race(
    contenders: dict[str, dict], clips: dict[str, int], repeats: int, log: str | None = None
) -> dict[str, list[dict]]:
    """Interleaved repeats; each result is appended to `log` (JSON lines) as it lands,
    so a run cut short by a time limit still leaves what it measured."""
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    for r in range(repeats):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            res = run_contender(contenders[name])
            res["clips_s"] = clips[name] / res["wall_s"]
            results[name].append(res)
            if log:
                with open(log, "a") as f:
                    f.write(json.dumps({"contender": name, "repeat": r, "clips": clips[name], **res}) + "\n")
            print(
                f"  [{r + 1}/{repeats}] {name}: {res['wall_s']:.1f} s wall, {res['clips_s']:.2f} clips/s",
                file=sys.stderr,
                flush=True,
            )
    return results


def table(results: dict[str, list[dict]], clips: dict[str, int], base: str) -> str:
    med = {n: statistics.median(r["clips_s"] for r in rs) for n, rs in results.items()}
    rows = [
        "| contender | clips | clips/s (median, end to end) | in-process s | x loop | peak RSS MB | peak GPU MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rs in results.items():
        work = statistics.median(r["work_s"] for r in rs)
        rss = max(max(r["rss_mb"], r["child_rss_mb"]) for r in rs)
        gpu = max((r.get("gpu_mb", 0) for r in rs), default=0)
        all_runs = ", ".join(f"{r['clips_s']:.2f}" for r in rs)
        rows.append(
            f"| {name} | {clips[name]} | {med[name]:.2f} ({all_runs}) | {work:.1f} | "
            f"{med[name] / med[base]:.2f} | {rss:.0f} | {gpu:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    if sys.argv[1:3] == ["_run", "-"]:
        return _child(json.load(sys.stdin))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("demo", help="CPU, the offline demo's model and clips")
    d.add_argument("--run", required=True, help="a finished offline demo working directory")
    d.add_argument("--repeats", type=int, default=3)
    d.add_argument(
        "--per-job", type=int, nargs="+", default=None, help="samples_per_job values to race (default: the config's)"
    )
    d.add_argument("--snakemake", action="store_true", help="also race the real snakemake run")
    s = sub.add_parser("small", help="GPU, whisper-small shape, random weights")
    s.add_argument("--clips", type=int, default=128)
    s.add_argument("--loop-clips", type=int, default=16)
    s.add_argument("--langs", default="de_de,fr_fr,ja_jp,ko_kr")
    s.add_argument(
        "--variants", default="fp32:16,fp16:16,fp16:32,fp16:64", help="dtype:batch[:per_job[:jobs at once]],..."
    )
    s.add_argument("--per-job", type=int, default=None, help="default: all clips of a language")
    s.add_argument("--threads", type=int, default=4, help="a calibrate job's threads (the rule's)")
    s.add_argument("--tokens", type=int, default=64)
    s.add_argument("--processor", default=None, help="prebuilt processor + generation config folder")
    s.add_argument("--repeats", type=int, default=1)
    s.add_argument("--agree", type=int, default=0, help="clips for the batch vs one-clip agreement check")
    s.add_argument("--workdir", default=None)
    for p in (d, s):
        p.add_argument("--log", default=None, help="append each result here (JSON lines) as it lands")
    args = ap.parse_args()

    import yaml

    if args.mode == "demo":
        run = Path(args.run).resolve()
        cfg = yaml.safe_load((REPO / "tests/config/offline.yaml").read_text())
        snapshot = str(run / "models" / Path(cfg["model"]).name)
        wavs = sorted(str(p) for p in (run / "data/audio_files").glob("*.wav"))
        cal = cfg["calibration"]
        settings = {
            "seed": cfg["seed"],
            "translate_ratio": cal["translate_ratio"],
            "max_new_tokens": cal["max_new_tokens"],
            "batch_size": cal["batch_size"],
            "dtype": "fp32",
        }
        contenders = {
            "loop": dict(kind="loop", snapshot=snapshot, wavs=wavs, device="cpu", max_new_tokens=cal["max_new_tokens"])
        }
        for per_job in args.per_job or [cal["samples_per_job"]]:
            contenders[f"package per_job={per_job}"] = dict(
                kind="package",
                snapshot=snapshot,
                wavs=wavs,
                device="cpu",
                settings=settings,
                per_job=per_job,
                threads=2,
            )
        if args.snakemake:
            for per_job in args.per_job or [cal["samples_per_job"]]:
                contenders[f"snakemake -j2 per_job={per_job}"] = dict(
                    kind="snakemake",
                    run_dir=str(run),
                    configfile=str(REPO / "tests/config/offline.yaml"),
                    per_job=per_job,
                )
        clips = {n: len(wavs) for n in contenders}
        device = "CPU"
    else:
        import torch

        work = Path(args.workdir or tempfile.mkdtemp(prefix="race_small."))
        langs = args.langs.split(",")
        wavs = synthetic_clips(work / "clips", args.clips, langs)
        snapshot = small_model(work / "model", args.processor)
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        contenders = {
            "loop (transcribe+translate)": dict(
                kind="loop", snapshot=snapshot, wavs=wavs[: args.loop_clips], device=dev, max_new_tokens=args.tokens
            ),
            "loop (one decode a clip)": dict(
                kind="loop",
                snapshot=snapshot,
                wavs=wavs[: args.loop_clips],
                device=dev,
                max_new_tokens=args.tokens,
                tasks_per_clip=1,
            ),
        }
        per_job = args.per_job or -(-args.clips // len(langs))
        for v in args.variants.split(","):
            dtype, batch, *job = v.split(":")
            settings = {
                "seed": 0,
                "translate_ratio": 0.2,
                "max_new_tokens": args.tokens,
                "batch_size": int(batch),
                "dtype": dtype,
            }
            n_job = int(job[0]) if job else per_job
            at_once = int(job[1]) if len(job) > 1 else 1
            name = f"package {dtype} batch {batch} per_job={n_job}" + (f", {at_once} at once" if at_once > 1 else "")
            contenders[name] = dict(
                kind="package",
                snapshot=snapshot,
                wavs=wavs,
                device=dev,
                settings=settings,
                per_job=n_job,
                threads=args.threads,
                at_once=at_once,
            )
        if args.agree:
            contenders["agreement"] = dict(
                kind="agree", snapshot=snapshot, wavs=wavs[: args.agree], device=dev, tokens=args.tokens
            )
        clips = {
            n: (args.loop_clips if n.startswith("loop") else args.agree if n == "agreement" else args.clips)
            for n in contenders
        }
    print(f"device: {device}; {sys.version.split()[0]}; cpus {os.cpu_count()}", file=sys.stderr, flush=True)
    results = race(contenders, clips, args.repeats, args.log)
    print(f"\ndevice: {device}\n")
    print(table(results, clips, base=next(iter(contenders))))


if __name__ == "__main__":
    main()
