# Config validation, the job plan and every input function. Rules never build paths
# themselves beyond these helpers; file names come from whisper_mxq.layout.
import json
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package, for this file; the rules' scripts find it through scripts/_paths.py.
sys.path.insert(0, os.path.abspath(os.path.join(workflow.basedir, "workflow")))

from whisper_mxq import compile as qbcompile
from whisper_mxq import compile_recipes, config_keys, data, jobs, layout, models, summary
from whisper_mxq.report import THRESHOLDS
from whisper_mxq.sweep import sweep_sizes
from whisper_mxq.labels import model_format as labels_format
from whisper_mxq.languages import DEFAULT_LANGUAGES, FLEURS_TO_WHISPER

# An unknown (misspelled) key is named in one line with the closest valid key;
# validate() would dump the whole schema and config after it.
_unknown = config_keys.message(
    config,
    os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml"),
    list(workflow.configfiles),
    dict(workflow.config_settings.config or {}),
)
if _unknown:
    raise WorkflowError(_unknown)
validate(config, workflow.source_path("../schemas/config.schema.yaml"))


def config_error(key, message):
    raise WorkflowError(f"config key {key!r}: {message}")


LANGUAGES = config.get("languages") or DEFAULT_LANGUAGES
for _lang in LANGUAGES:
    if _lang not in FLEURS_TO_WHISPER:
        config_error(
            "languages",
            f"{_lang!r} is not a FLEURS config the workflow maps to Whisper "
            f"(known: {', '.join(FLEURS_TO_WHISPER)})",
        )

try:
    MODEL = layout.model_name(config["model"])
    LABEL_MODEL = layout.label_model_name(config["labels"]["model"])
except ValueError as e:
    raise WorkflowError(str(e))
N_SAMPLES = config["samples_per_language"]

SNAPSHOT = layout.MODEL_SNAPSHOT.format(model=MODEL)


def check_languages(folder):
    """An English-only model (as its own config says, whatever its folder is called)
    decodes English only: say so before any job. Known where the model is a local folder
    or already snapshotted; otherwise the calibrate jobs refuse it."""
    try:
        multilingual = models.is_multilingual(folder)
    except ValueError as e:
        config_error("model", str(e))
    if not multilingual and set(LANGUAGES) != {"en_us"}:
        config_error(
            "languages", f"{config['model']!r} is an English-only Whisper: set languages: [en_us]"
        )


def model_on_disk():
    """The model's folder where its config.json is on disk yet (the configured folder,
    else the snapshot), or None (a Hub id not snapshotted)."""
    return next(
        (f for f in (config["model"], SNAPSHOT) if os.path.isfile(os.path.join(f, "config.json"))),
        None,
    )


if model_on_disk():
    check_languages(model_on_disk())
# The label model: an openai-whisper checkpoint, or a Hugging Face Whisper snapshotted
# like the model (the same snapshot when it is the model being compiled).
LABELS_FROM_OPENAI_WHISPER = labels_format(config["labels"]["model"]) == "openai-whisper"
if LABELS_FROM_OPENAI_WHISPER:
    LABEL_SNAPSHOT = layout.LABEL_MODEL.format(label_model=LABEL_MODEL)
else:
    LABEL_SNAPSHOT = layout.MODEL_SNAPSHOT.format(model=LABEL_MODEL)
    if LABEL_SNAPSHOT == SNAPSHOT and config["labels"]["model"] != config["model"]:
        config_error(
            "labels.model",
            f"{config['labels']['model']!r} and model {config['model']!r} would share the "
            f"snapshot {SNAPSHOT}: name one of the folders differently",
        )
DEMO = config.get("demo", {})

# Local models and data are checked before any job (JSON files and safetensors headers,
# the audio folder's list), so a wrong folder fails naming its key, not hours later.
try:
    if config["model"] not in DEMO.values():
        models.check_model_source(config["model"], "model")
    if not LABELS_FROM_OPENAI_WHISPER and config["labels"]["model"] not in DEMO.values():
        models.check_model_source(config["labels"]["model"], "labels.model")
    label_source = config["labels"]["model"]
    if (
        LABELS_FROM_OPENAI_WHISPER
        and label_source.endswith(".pt")
        and label_source not in DEMO.values()
        and not os.path.isfile(label_source)
    ):
        raise ValueError(f"config key 'labels.model': no checkpoint file at {label_source!r}")
    if config["fleurs"]["source"] not in DEMO.values():
        data.check_source(config["fleurs"]["source"], config["fleurs"]["split"], LANGUAGES)
except ValueError as e:
    raise WorkflowError(str(e))


wildcard_constraints:
    part="encoder|decoder",
    model=re.escape(MODEL),


# --- devices ------------------------------------------------------------------------
def device(step):
    return config[step]["device"]


GPUS_VISIBLE = jobs.visible_gpus()


def gpus(step):
    """GPU slots a job of this step holds (`--resources gpu=N` lets N run at once; each
    then takes a GPU of its own). `auto` means a GPU where one is visible."""
    dev = device(step)
    if dev == "auto":
        return int(GPUS_VISIBLE > 0)
    return 0 if dev == "cpu" else 1


# --- the job plan ---------------------------------------------------------------------
# One plan for downloads, labels and calibration (whisper_mxq/jobs.py): job 003
# downloads, labels and calibrates the same samples. `auto`, where both label and
# calibrate jobs get a GPU: the visible GPUs shared by the two steps (at least one: a
# cluster's submit host sees none of its nodes' GPUs); else jobs of 100 samples.
ON_GPUS = bool(gpus("calibration") and gpus("labels"))
PER_JOB = jobs.samples_per_job(
    config["calibration"]["samples_per_job"],
    len(LANGUAGES) * N_SAMPLES,
    jobs.jobs_at_once(max(GPUS_VISIBLE, 1), 2) if ON_GPUS else 0,
)
PACK = config["calibration"]["pack_languages"]
PACK = ON_GPUS if PACK == "auto" else PACK
JOBS = jobs.plan(LANGUAGES, N_SAMPLES, PER_JOB, PACK)


# A job of many files prints one line (its rule, clips and languages), not hundreds of
# file names: the default dry run of the main target is 15 kB, not 97. `--verbose` prints
# Snakemake's full form.
FULL_JOB_INFO = workflow.output_settings.verbose


def job_message(rule_name, what):
    """`Job 12: download_003: 20 clips (el_gr 0-19)`, then Snakemake's `Reason:` line."""
    if FULL_JOB_INFO:
        return None
    # a message is a format string: braces in a path stay braces
    text = f"{rule_name}: {what}"
    return text.replace("{", "{{").replace("}", "}}")


def clips(job):
    """What a job of the plan holds: its clips, each language's indices."""
    parts = ", ".join(f"{p.lang} {p.start}-{p.stop - 1}" for p in job.slices)
    return f"{len(job.samples)} clips ({parts})"


def paths(pattern, samples):
    return [pattern.format(sample=s) for s in samples]


def all_samples():
    """Every sample id in the fixed order of the calibration lists: language, index."""
    return [s for job in JOBS for s in job.samples]


def download_parts(plan, job, stamp_pattern):
    """(language, clips, stamp of the job whose download this one continues or None)."""
    out = []
    for part in job.slices:
        before = jobs.previous(plan, part)
        out.append(
            (part.lang, part.stop - part.start, before and stamp_pattern.format(job=before.name))
        )
    return out


def stamp(job):
    return layout.DOWNLOAD_STAMP.format(job=job.name)


def job_files(job):
    """Every per-sample file a calibrate job writes, in the order of its outputs."""
    return {
        "features": paths(layout.ENCODER_NPY, job.samples),
        "encoder_states": paths(layout.DECODER_ENCODER_STATES, job.samples),
        "decoder_states": paths(layout.DECODER_DECODER_STATES, job.samples),
    }


def summaries():
    return [layout.CALIBRATION_JOB.format(job=job.name) for job in JOBS]


# --- quality: held-out evaluation --------------------------------------------------------
QUALITY = config["quality"]
EVAL = QUALITY["eval"]
EVAL_SOURCE = EVAL["source"] or config["fleurs"]["source"]
# Evaluation clips follow the calibration's plan (jobs.py), over their own samples.
EVAL_JOBS = jobs.plan(LANGUAGES, EVAL["samples_per_language"], PER_JOB, PACK)
QUALITY_INFO = {
    "model": MODEL,
    "backend": QUALITY["backend"],
    "method": QUALITY["method"],
    "per_channel": QUALITY["per_channel"],
    "recipe": QUALITY["recipe"],
}


def eval_stamp(job):
    return layout.EVAL_STAMP.format(job=job.name)


def calibration_downloads(langs):
    """(stamp, manifest) of the calibration downloads holding these languages: their
    sentences are kept out of evaluation."""
    return [
        (stamp(job), layout.MANIFEST.format(job=job.name))
        for job in JOBS
        if set(job.languages) & set(langs)
    ]


def eval_inputs():
    return {
        "model": SNAPSHOT,
        "stamps": [eval_stamp(job) for job in EVAL_JOBS],
        "manifests": [layout.EVAL_MANIFEST.format(job=job.name) for job in EVAL_JOBS],
        "reference": layout.QUALITY_REFERENCE,
    }


def compiled_pair():
    """What the quality report runs against FP32: the ONNX INT8 pair with the nodes'
    precision, or the runtime bundle of the compiled .mxq pair (quality.backend: npu)."""
    if QUALITY["backend"] == "npu":
        return {"bundle": layout.BUNDLE.format(model=MODEL)}
    return {
        "int8_encoder": model_file(layout.ONNX_INT8, "encoder"),
        "int8_decoder": model_file(layout.ONNX_INT8, "decoder"),
        "precision": [model_file(layout.ONNX_INT8_PRECISION, p) for p in layout.PARTS],
    }


def sweep_points():
    sizes = sweep_sizes(len(LANGUAGES) * N_SAMPLES, QUALITY["sweep"]["sizes"])
    return [
        layout.SWEEP_POINT.format(model=MODEL, mix=mix, size=size)
        for mix in QUALITY["sweep"]["mixes"]
        for size in sizes
    ]


def quality_files():
    return [layout.QUALITY.format(model=MODEL)] + [
        p.format(model=MODEL) for p in layout.QUALITY_PLOTS.values()
    ]


# --- local inputs ---------------------------------------------------------------------
def source_param(location):
    """A job's source as a param: its input where the source is local (so a cluster
    without a shared filesystem stages it), else the Hub id it fetches."""
    return lambda w, input: input.source[0] if input.source else location


def is_local(path):
    """A model or data location that is local: it exists, or the demo rules build it."""
    return os.path.exists(path) or path in DEMO.values()


def local_input(path):
    """A model or data location is a rule input when it is local; a Hub id is fetched
    by the snapshot/download job itself."""
    return [path] if is_local(path) else []


def source_folder(location):
    """A local data source as a job's input, for staging only: a folder's time says
    nothing of the files under it, its language stamps (below) stand for those. The
    demo's source is no folder output: its shards are (demo_shards)."""
    return (
        [ancient(location)] if os.path.exists(location) and location != DEMO.get("fleurs") else []
    )


DEMO_LANGUAGES = DEMO.get("languages") or LANGUAGES


def demo_shards(langs=None):
    folder = layout.inside_workdir(DEMO["fleurs"], "demo.fleurs")
    return [
        layout.DEMO_SHARD.format(folder=folder, lang=lang, split=config["fleurs"]["split"])
        for lang in DEMO_LANGUAGES
        if langs is None or lang in langs
    ]


# Per language of a local data source, a stamp of the files its downloads read
# (data.source_listing): a changed, added or removed shard, clip or list row makes that
# language's downloads stale, no other language's, and the dry run's `reason:` names the
# file. stamp path -> (location, split, language, files, list rows digest).
SOURCE_STAMPS = {}


def source_stamp(location, split, lang):
    own = (location, split) == (config["fleurs"]["source"], config["fleurs"]["split"])
    return (layout.SOURCE_STAMP if own else layout.EVAL_SOURCE_STAMP).format(lang=lang)


def plan_sources(location, split, langs):
    if not is_local(location):
        return
    if location == DEMO.get("fleurs"):
        listing = {lang: {"files": demo_shards([lang]), "rows": None} for lang in langs}
    else:
        try:
            listing = data.source_listing(data.Source(location, split), langs)
        except ValueError as e:
            raise WorkflowError(f"config key 'fleurs.source' or 'quality.eval.source': {e}")
    for lang in langs:
        found = listing.get(lang, {"files": [], "rows": None})
        SOURCE_STAMPS[source_stamp(location, split, lang)] = (
            location,
            split,
            lang,
            found["files"],
            found["rows"],
        )


def source_stamps(location, split, langs):
    """The stamps of these languages of a source: the download jobs' inputs."""
    return [source_stamp(location, split, lang) for lang in langs] if is_local(location) else []


plan_sources(config["fleurs"]["source"], config["fleurs"]["split"], LANGUAGES)
# en_us too: rule eval_english takes the translations' references from its text
plan_sources(EVAL_SOURCE, EVAL["split"], sorted({*LANGUAGES, "en_us"}))


def skipped_clips():
    """The console's note at the end of a run that skipped clips (none: None)."""
    return summary.skipped_clips(
        {
            "calibration": [layout.MANIFEST.format(job=job.name) for job in JOBS],
            "held-out": [layout.EVAL_MANIFEST.format(job=job.name) for job in EVAL_JOBS],
        }
    )


# --- targets --------------------------------------------------------------------------
def compiled_mxq():
    return [layout.MXQ.format(model=MODEL, part=p) for p in layout.PARTS]


def calibration_of(part):
    """The file qbcompiler calibrates this part with; the INT8 backend reads the same."""
    return layout.ENCODER_LIST if part == "encoder" else layout.DECODER_JSON


def model_file(pattern, part):
    """A `{model}_{part}` pattern with the part filled in, the model left a wildcard."""
    return pattern.replace("{part}", part)


def calibration_files():
    return [layout.ENCODER_LIST, layout.DECODER_JSON, layout.DECODER_METADATA]


def get_final_output():
    return [layout.TRANSCRIPTIONS, layout.TRANSLATIONS, *calibration_files(), *compiled_mxq()]


def missing_files(*steps):
    """Per-sample files of finished jobs that are gone from disk, for the targets.

    Snakemake rebuilds a missing file only when a job that needs it has to run anyway:
    downstream of finished jobs, a deleted calibration file would go unnoticed while the
    lists still name it. The targets (`calibration`, `quality`, `all`; `data` for the
    clips) therefore ask for those files themselves: the jobs that made them run again,
    with what depends on them in the same run (the lists), and no other job. A compile
    asked for later finds lists of the same content (same checksums) and stays as it is."""
    found = []
    for job in JOBS:
        if "data" in steps and os.path.exists(stamp(job)):
            found += [p for p in paths(layout.AUDIO, job.samples) if not os.path.exists(p)]
        if "calibration" in steps and os.path.exists(layout.CALIBRATION_JOB.format(job=job.name)):
            found += [
                p for files in job_files(job).values() for p in files if not os.path.exists(p)
            ]
    return found


# --- compile -------------------------------------------------------------------------------
def compile_plans():
    """Recipe, board, schemes and config objects of both parts, checked now, before any
    job: REGULUS's limits always, the config objects against qbcompiler where it is
    importable here (with --sdm conda it lives in the job's env, which checks them)."""
    try:
        plans = compile_recipes.plans(config["compile"])
        positions = model_positions()
        if positions is not None:
            compile_recipes.check_positions(plans["decoder"], positions, "max_target_positions")
        # a no-op where qbcompiler is not importable here (--sdm conda: the compile
        # jobs' own env checks them)
        qbcompile.validate_installed(plans)
    except compile_recipes.ConfigError as e:
        raise WorkflowError(str(e))
    return plans


def model_positions():
    """The decoder's positions from the model's config.json, where it is on disk yet."""
    folder = model_on_disk()
    if folder is None:
        return None
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        return json.load(f).get("max_target_positions")


COMPILE_PLANS = compile_plans()
