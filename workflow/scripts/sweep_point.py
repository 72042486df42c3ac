import _paths  # noqa: F401  (whisper_mxq importable in any env)

import os
import tempfile

from whisper_mxq import atomic, logs, sweep

logs.to_file(snakemake.log)
i, w, p = snakemake.input, snakemake.wildcards, snakemake.params
out = snakemake.output[0]
os.makedirs(os.path.dirname(out), exist_ok=True)
with tempfile.TemporaryDirectory(dir=os.path.dirname(out), prefix=".sweep.") as work:
    point = sweep.sweep_point(
        i.model,
        list(i.manifests),
        i.reference,
        {"encoder": i.encoder, "decoder": i.decoder},
        {"encoder": i.calib_encoder, "decoder": i.calib_decoder},
        int(w.size),
        w.mix,
        p.method,
        p.per_channel,
        p.recipe,
        work,
        snakemake.threads,
    )
atomic.write_json(out, point)
