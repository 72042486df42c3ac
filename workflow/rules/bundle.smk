# Step 4: the folder Mobilint's runtime loads: both .mxq files, the model's config,
# processor and generation config, and the decoder's embedding tables.


rule bundle:
    input:
        model=SNAPSHOT,
        encoder=model_file(layout.MXQ, "encoder"),
        decoder=model_file(layout.MXQ, "decoder"),
    output:
        directory(layout.BUNDLE),
    log:
        "logs/bundle/{model}.log",
    conda:
        "../../envs/calibration.yaml"
    script:
        "../scripts/bundle.py"


# Copies and a few small reads: no need for a cluster node.
localrules:
    bundle,
