# Step 3: qbcompiler. The .mblt needs only the model, so it is parsed while
# calibration still runs; the .mxq waits for the calibration file.
import json

from whisper_mxq import compile as qbcompile
from whisper_mxq import compile_recipes


def compile_plans():
    """Recipe, board, schemes and config objects of both parts, checked now, before any
    job: REGULUS's limits always, the config objects against qbcompiler where it is
    importable here (with --sdm conda it lives in the job's env, which checks them)."""
    try:
        plans = compile_recipes.plans(config["compile"])
        positions = model_positions()
        if positions is not None:
            compile_recipes.check_positions(plans["decoder"], positions, "max_target_positions")
        if workflow.is_main_process and not workflow.deployment_settings.deployment_method:
            qbcompile.validate_installed(plans)
    except compile_recipes.ConfigError as e:
        raise WorkflowError(str(e))
    return plans


def model_positions():
    """The decoder's positions from the model's config.json, where it is on disk yet."""
    for folder in (SNAPSHOT, config["model"]):
        path = os.path.join(folder, "config.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f).get("max_target_positions")
    return None


COMPILE_PLANS = compile_plans()


rule mblt:
    input:
        SNAPSHOT,
    output:
        layout.MBLT,
    params:
        # each board gets its own parse; the recipe picks the 1.3 decoder's part options
        compile=lambda w: {k: config["compile"][k] for k in ("target_device", "recipe")},
    log:
        "logs/mblt/{model}_{part}.log",
    benchmark:
        "benchmarks/mblt/{model}_{part}.tsv"
    conda:
        "../../envs/qbcompiler.yaml"
    priority: 50
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    script:
        "../scripts/compile_mblt.py"


rule mxq:
    input:
        mblt=layout.MBLT,
        calib=lambda w: calibration_of(w.part),
    output:
        layout.MXQ,
    params:
        device=device("compile"),
        compile=config["compile"],
    log:
        "logs/mxq/{model}_{part}.log",
    benchmark:
        "benchmarks/mxq/{model}_{part}.tsv"
    conda:
        "../../envs/qbcompiler.yaml"
    threads: 2
    resources:
        mem_mb=32000,
        runtime=240,
        gpu=gpus("compile"),
    script:
        "../scripts/compile_mxq.py"
