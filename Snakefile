# Whisper checkpoint -> Mobilint NPU binaries (.mxq), calibrated on FLEURS speech.
# A table of contents: each stage lives in workflow/rules/, its logic in
# workflow/whisper_mxq/ (the package), named after the tutorial's steps.
import os

from snakemake.utils import min_version

min_version("9.0")


# The repository's defaults; --configfile layers a user's file over them, also with -d.
configfile: os.path.join(workflow.basedir, "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/quality.smk"
include: "workflow/rules/bundle.smk"


rule all:
    input:
        get_final_output(),
        lambda w: missing_files("calibration"),
    localrule: True


# Skipped clips are in the manifests and calibration/report.json; the console says so too
# (not after --touch, which marks files done without making them).
onsuccess:
    note = None if workflow.touch else skipped_clips()
    if note:
        logger.info(note)
