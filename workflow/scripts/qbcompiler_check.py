import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import compile, compile_recipes, logs

logs.to_file(snakemake.log)
found = compile.check_installed(snakemake.output[0], compile_recipes.plans(snakemake.params.compile))
print(f"found {found}")
