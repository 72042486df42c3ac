# Quality: an ONNX Runtime INT8 backend fed by the very calibration files qbcompiler
# reads, and what quantization costs on held-out clips (FP32 PyTorch vs INT8 ONNX).
# Needs no NPU SDK. Targets: `quality` (report and plots), `quality_sweep`. The evaluation
# plan and input functions are in common.smk.
for _job in EVAL_JOBS:

    rule:
        name:
            f"download_eval_{_job.name}"
        input:
            source=source_folder(EVAL_SOURCE),
            languages=source_stamps(EVAL_SOURCE, EVAL["split"], _job.languages),
            calibration=[s for s, _ in calibration_downloads(_job.languages)],
            continues=[
                ancient(s) for _, _, s in download_parts(EVAL_JOBS, _job, layout.EVAL_STAMP) if s
            ],
            # as in data.smk
        output:
            wavs=paths(layout.EVAL_AUDIO, _job.samples),
            manifest=layout.EVAL_MANIFEST.format(job=_job.name),
            stamp=eval_stamp(_job),
        log:
            f"logs/download_eval/{_job.name}.log",
        benchmark:
            f"benchmarks/download_eval/{_job.name}.tsv"
        retries: 2
        localrule: True  # fetches from the internet: runs on the submit host
        conda:
            "../../envs/data.yaml"
        threads: 4  # languages read at once
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            parts=download_parts(EVAL_JOBS, _job, layout.EVAL_STAMP),
            calibration=calibration_downloads(_job.languages),
            source=source_param(EVAL_SOURCE),
            split=EVAL["split"],
            max_skipped_fraction=config["data"]["max_skipped_fraction"],
        message:
            job_message(f"download_eval_{_job.name}", clips(_job))
        script:
            "../scripts/download_eval.py"

    # The label model's translations of the evaluation clips: BLEU's references where
    # the source has no human English of a clip (rule eval_english).
    rule:
        name:
            f"label_eval_{_job.name}"
        input:
            stamp=eval_stamp(_job),
            model=LABEL_SNAPSHOT,
        output:
            layout.EVAL_LABELS.format(job=_job.name),
        log:
            f"logs/label_eval/{_job.name}.log",
        benchmark:
            f"benchmarks/label_eval/{_job.name}.tsv"
        conda:
            "../../envs/data.yaml"
        # clip reading and log-mel: they keep a GPU fed (Snakemake lowers it to --cores)
        threads: 4
        resources:
            mem_mb=16000,
            runtime=60,
            gpu=gpus("labels"),
        params:
            manifest=layout.EVAL_MANIFEST.format(job=_job.name),
            source=config["labels"]["model"],
            batch_size=config["labels"]["batch_size"],
            max_tokens=config["labels"]["max_tokens"],
            device=device("labels"),
        message:
            job_message(f"label_eval_{_job.name}", clips(_job))
        script:
            "../scripts/label.py"


# Per language, the English reference of its translations: FLEURS' en_us text of the same
# sentence id (FLEURS is n-way parallel), else the label model's translations.
rule eval_english:
    input:
        source=source_folder(EVAL_SOURCE),
        english=source_stamps(EVAL_SOURCE, EVAL["split"], ["en_us"]),
        stamps=[eval_stamp(job) for job in EVAL_JOBS],
        manifests=[layout.EVAL_MANIFEST.format(job=job.name) for job in EVAL_JOBS],
    output:
        layout.EVAL_ENGLISH,
    log:
        "logs/eval_english.log",
    localrule: True  # reads two text columns from the source (the internet for a Hub id)
    conda:
        "../../envs/data.yaml"
    params:
        source=source_param(EVAL_SOURCE),
        split=EVAL["split"],
    script:
        "../scripts/eval_english.py"


rule onnx_export:
    input:
        SNAPSHOT,
    output:
        layout.ONNX,
    log:
        "logs/onnx_export/{model}_{part}.log",
    benchmark:
        "benchmarks/onnx_export/{model}_{part}.tsv"
    conda:
        "../../envs/quality.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        "../scripts/onnx_export.py"


rule onnx_int8:
    input:
        onnx=layout.ONNX,
        calib=lambda w: calibration_of(w.part),
    output:
        model=layout.ONNX_INT8,
        precision=layout.ONNX_INT8_PRECISION,
    log:
        "logs/onnx_int8/{model}_{part}.log",
    benchmark:
        "benchmarks/onnx_int8/{model}_{part}.tsv"
    conda:
        "../../envs/quality.yaml"
    resources:
        mem_mb=16000,
        runtime=120,
    params:
        method=QUALITY["method"],
        per_channel=QUALITY["per_channel"],
        recipe=QUALITY["recipe"],
    script:
        "../scripts/onnx_int8.py"


rule quality_reference:
    input:
        **{k: v for k, v in eval_inputs().items() if k != "reference"},
    output:
        layout.QUALITY_REFERENCE,
    log:
        "logs/quality_reference/{model}.log",
    benchmark:
        "benchmarks/quality_reference/{model}.tsv"
    conda:
        "../../envs/quality.yaml"
    threads: QUALITY["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        max_new_tokens=QUALITY["max_new_tokens"],
    script:
        "../scripts/quality_reference.py"


rule quality_report:
    input:
        **eval_inputs(),
        **compiled_pair(),
        labels=[layout.EVAL_LABELS.format(job=job.name) for job in EVAL_JOBS],
        english=layout.EVAL_ENGLISH,
        encoder=model_file(layout.ONNX, "encoder"),
        decoder=model_file(layout.ONNX, "decoder"),
        calib=[layout.ENCODER_LIST, layout.DECODER_JSON],
    output:
        json=layout.QUALITY,
        wer=report(
            layout.QUALITY_PLOTS["wer"], caption="../report/quality_wer.rst", category="Quality"
        ),
        agreement=report(
            layout.QUALITY_PLOTS["agreement"],
            caption="../report/quality_agreement.rst",
            category="Quality",
        ),
        latency=report(
            layout.QUALITY_PLOTS["latency"],
            caption="../report/quality_latency.rst",
            category="Quality",
        ),
    log:
        "logs/quality_report/{model}.log",
    benchmark:
        "benchmarks/quality_report/{model}.tsv"
    conda:
        # the NPU's client needs transformers < 5.18
        "../../envs/runtime.yaml" if QUALITY["backend"] == "npu" else "../../envs/quality.yaml"
    threads: QUALITY["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        info=QUALITY_INFO,
        max_new_tokens=QUALITY["max_new_tokens"],
        latency_runs=QUALITY["latency_runs"],
        thresholds={k: QUALITY[k] for k in THRESHOLDS},
    script:
        "../scripts/quality_report.py"


rule sweep_point:
    input:
        **eval_inputs(),
        encoder=model_file(layout.ONNX, "encoder"),
        decoder=model_file(layout.ONNX, "decoder"),
        calib_encoder=layout.ENCODER_LIST,
        calib_decoder=layout.DECODER_JSON,
    output:
        layout.SWEEP_POINT,
    log:
        "logs/sweep_point/{model}_{mix}_{size}.log",
    benchmark:
        "benchmarks/sweep_point/{model}_{mix}_{size}.tsv"
    wildcard_constraints:
        mix="all|transcribe",
        size=r"\d+",
    conda:
        "../../envs/quality.yaml"
    threads: QUALITY["threads"]
    resources:
        mem_mb=16000,
        runtime=120,
    params:
        method=QUALITY["method"],
        per_channel=QUALITY["per_channel"],
        recipe=QUALITY["recipe"],
    script:
        "../scripts/sweep_point.py"


rule quality_sweep_plot:
    input:
        sweep_points(),
    output:
        json=layout.SWEEP,
        plot=report(layout.SWEEP_PLOT, caption="../report/quality_sweep.rst", category="Quality"),
    log:
        "logs/quality_sweep/{model}.log",
    localrule: True
    conda:
        "../../envs/quality.yaml"
    params:
        info=QUALITY_INFO,
    script:
        "../scripts/quality_sweep.py"


rule quality:
    input:
        quality_files(),
        lambda w: missing_files("calibration"),
    localrule: True


rule quality_sweep:
    input:
        layout.SWEEP.format(model=MODEL),
        layout.SWEEP_PLOT.format(model=MODEL),
    localrule: True
