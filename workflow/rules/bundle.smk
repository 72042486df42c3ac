# Step 4: the folder Mobilint's runtime loads: both .mxq files, the model's config,
# processor and generation config, the decoder's embedding tables, and where each part
# runs (the core mode and board each binary was compiled for).
from whisper_mxq import bundle as runtime_bundle


rule bundle:
    input:
        model=SNAPSHOT,
        encoder=model_file(layout.MXQ, "encoder"),
        decoder=model_file(layout.MXQ, "decoder"),
    output:
        directory(layout.BUNDLE),
    log:
        "logs/bundle/{model}.log",
    localrule: True  # copies and a few small reads: no need for a cluster node
    conda:
        "../../envs/calibration.yaml"
    params:
        runtime=runtime_bundle.placement(
            config["compile"]["target_device"],
            {part: p.scheme for part, p in COMPILE_PLANS.items()},
            config["bundle"]["dev_no"],
        ),
        dev_no=config["bundle"]["dev_no"],
    script:
        "../scripts/bundle.py"
