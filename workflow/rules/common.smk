# Config validation, the sample table and every input function. Rules never build
# paths themselves beyond these helpers; file names come from whisper_mxq.layout.
import os
import re
import shutil
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

PACKAGE_ROOT = os.path.abspath(os.path.join(workflow.basedir, "workflow"))
sys.path.insert(0, PACKAGE_ROOT)
# Scripts, conda envs and cluster jobs import the package from the checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
)

from whisper_mxq import layout
from whisper_mxq.languages import DEFAULT_LANGUAGES, FLEURS_TO_WHISPER


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
# English-only checkpoints (`*.en`) decode English only; say so before any download.
# A local folder not named so is caught by the calibration job (calibration.py).
if MODEL.endswith(".en") and set(LANGUAGES) != {"en_us"}:
    config_error("languages", f"{config['model']!r} is English-only: set languages: [en_us]")
N_SAMPLES = config["samples_per_language"]

SNAPSHOT = layout.MODEL_SNAPSHOT.format(model=MODEL)
LABEL_SNAPSHOT = layout.LABEL_MODEL.format(label_model=LABEL_MODEL)
DEMO = config.get("demo", {})

# Jobs that fetch from the internet (or only copy/build small local things) run on the
# submit host; cluster compute nodes never touch the network.
localrules:
    snapshot_model,
    snapshot_label_model,
    merge_labels,
    encoder_list,
    decoder_calib,
    calibration,
    all,


wildcard_constraints:
    lang="|".join(re.escape(l) for l in LANGUAGES),
    group=r"\d{3}",
    part="encoder|decoder",
    model=re.escape(MODEL),


# --- samples and groups -------------------------------------------------------
def group_indices(group):
    """Sample indices of one job group: samples_per_job consecutive clips."""
    group = int(group)
    return range(group * PER_JOB, min((group + 1) * PER_JOB, N_SAMPLES))


def group_name(group):
    return f"{int(group):03d}"


def samples_of(lang, indices=None):
    return [layout.sample_id(lang, i) for i in (indices or range(N_SAMPLES))]


def all_samples():
    """Every sample id in the fixed order of the calibration lists: language, index."""
    return [s for lang in LANGUAGES for s in samples_of(lang)]


def calibrate_jobs():
    """(name, samples) of each calibrate job. Languages of samples_per_job samples or
    more are cut into jobs of samples_per_job; smaller ones share a job, whole
    languages at a time (samples_per_job // samples_per_language of them), so a small
    config pays the fixed cost of a job (process start, torch + transformers imports,
    model load: see SAMPLES_PER_JOB_AUTO) a few times, not once per language. Whole
    languages keep a job's samples stable when languages are added at the end of the
    list."""
    if PER_JOB >= N_SAMPLES:
        per = PER_JOB // N_SAMPLES
        jobs = [
            [s for lang in LANGUAGES[i : i + per] for s in samples_of(lang)]
            for i in range(0, len(LANGUAGES), per)
        ]
    else:
        jobs = [samples_of(lang, group_indices(g)) for lang in LANGUAGES for g in range(N_GROUPS)]
    width = max(3, len(str(len(jobs) - 1)))
    return [(f"{j:0{width}d}", samples) for j, samples in enumerate(jobs)]


def lang_pattern(pattern, indices):
    """A per-sample path pattern over one language wildcard, for a rule's output."""
    return [pattern.format(sample=f"{{lang}}_{i:04d}") for i in indices]


def wavs(lang, indices=None):
    return [layout.AUDIO.format(sample=s) for s in samples_of(lang, indices)]


def paths(pattern, samples):
    return [pattern.format(sample=s) for s in samples]


# --- local inputs -----------------------------------------------------------------
def local_input(path):
    """A model or data location is a rule input when it is local (it exists, or the
    demo rules build it); a Hub id is fetched by the snapshot/download job itself."""
    return [path] if os.path.exists(path) or path in DEMO.values() else []


def device(step):
    return config[step]["device"]


def gpus(step):
    """GPU slots a job of this step holds (the default profile allows one at a time).
    `auto` means a GPU only where one is visible; asking torch would slow every parse."""
    dev = device(step)
    if dev == "auto":
        return int(shutil.which("nvidia-smi") is not None)
    return 0 if dev == "cpu" else 1


# samples_per_job `auto`: a job's fixed cost (process start, torch + transformers
# imports, model load) is ~4.5 s on 2 CPU cores and ~14 s on the GPU hosts measured,
# against seconds per whisper-small sample on a CPU and ~1/30 s on a GPU (tests/
# benchmarks/RESULTS.md); GPU jobs queue on one device, so fewer, larger jobs win there.
# The label jobs share the groups, so 1000 only where both steps get a GPU (large-v3
# labels 1000 clips on a CPU would outrun any job time limit).
SAMPLES_PER_JOB_AUTO = {"gpu": 1000, "cpu": 100}
# `auto` is resolved once, where the run starts, and handed down in the environment:
# cluster jobs parse this file again on a node that may see a GPU where the submit
# host saw none, and the calibrate rules (one per job) must be the same there.
AUTO_PER_JOB_VAR = "WHISPER_MXQ_AUTO_SAMPLES_PER_JOB"


def samples_per_job():
    setting = config["calibration"]["samples_per_job"]
    if setting != "auto":
        return setting
    on_gpu = gpus("calibration") and gpus("labels")
    os.environ.setdefault(AUTO_PER_JOB_VAR, str(SAMPLES_PER_JOB_AUTO["gpu" if on_gpu else "cpu"]))
    return int(os.environ[AUTO_PER_JOB_VAR])


PER_JOB = samples_per_job()
N_GROUPS = -(-N_SAMPLES // PER_JOB)


# --- targets ----------------------------------------------------------------------
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


# --- qbcompiler preflight -----------------------------------------------------------
def preflight_qbcompiler():
    """Fail before the first job, not hours later, when the run needs qbcompiler and it
    is missing. With --sdm conda/apptainer the compile env is checked by its own job."""
    from whisper_mxq import compile as qb

    if workflow.deployment_settings.deployment_method or workflow.dag is None:
        return
    needs = {job.rule.name for job in workflow.dag.needrun_jobs()} & {"mblt", "mxq"}
    if needs and not qb.available():
        raise WorkflowError(qb.INSTALL_HINT)


onstart:
    preflight_qbcompiler()


# --- DAG planning at thousands of samples ---------------------------------------
def index_literal_producers(rules, min_products=50):
    """Make Snakemake's producer check a set lookup for rules with many literal outputs.

    Planning asks, for every input file, whether a candidate rule produces it; Rule.
    is_producer answers by matching the path against each of the rule's outputs in turn,
    compiling a regex for each. The download and calibrate rules are stamped out with
    literal paths (hundreds to thousands each), which made that scan most of the time of
    `snakemake -n` at 17 x 1000 samples. For a rule without wildcards a literal output's
    regex matches exactly its own path, so membership in the set of its paths gives the
    same answer (tests/test_dag_scale.py guards time, the DAG tests the plan)."""
    for r in rules:
        if r.has_wildcards():
            continue
        paths = frozenset(str(p) for p in r.products())
        if len(paths) >= min_products:
            r.is_producer = paths.__contains__
