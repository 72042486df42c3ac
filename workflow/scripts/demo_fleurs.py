import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import demo, logs

logs.to_file(snakemake.log)
demo.build_fleurs_demo(
    snakemake.params.folder,
    languages={lang: None for lang in snakemake.params.languages},
    split=snakemake.params.split,
)
