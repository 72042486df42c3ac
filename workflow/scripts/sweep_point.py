import os
import tempfile

from whisper_mxq import atomic, logs, quality

logs.to_file(snakemake.log)
i, w = snakemake.input, snakemake.wildcards
out = snakemake.output[0]
os.makedirs(os.path.dirname(out), exist_ok=True)
with tempfile.TemporaryDirectory(dir=os.path.dirname(out), prefix=".sweep.") as work:
    point = quality.sweep_point(
        i.model, list(i.manifests), i.reference,
        {"encoder": i.encoder, "decoder": i.decoder},
        {"encoder": i.calib_encoder, "decoder": i.calib_decoder},
        int(w.size), w.mix, snakemake.params.method, snakemake.params.per_channel,
        work, snakemake.threads,
    )
atomic.write_json(out, point)
