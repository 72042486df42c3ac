import _paths  # noqa: F401  (whisper_mxq importable in any env)

from whisper_mxq import layout, logs, report

logs.to_file(snakemake.log)
i, p = snakemake.input, snakemake.params
if p.info["backend"] == "npu":
    compiled, precision, graphs = report.npu_backend(i.bundle), {}, None
else:
    compiled = report.onnx_backend(i.int8_encoder, i.int8_decoder, snakemake.threads)
    precision = dict(zip(layout.PARTS, i.precision))
    # per node of each part, FP32 graph against INT8 graph
    graphs = {"encoder": (i.encoder, i.int8_encoder), "decoder": (i.decoder, i.int8_decoder)}
result = report.evaluate(
    i.model,
    list(i.manifests),
    i.reference,
    list(i.labels),
    i.english,
    i.encoder,
    compiled,
    report.Settings(p.max_new_tokens, p.latency_runs, snakemake.threads, **p.thresholds),
    report.settings_info(p.info, *i.calib, precision),
    graphs,
)
out = snakemake.output
report.write_report(result, out.json, [out.wer, out.agreement, out.latency])
