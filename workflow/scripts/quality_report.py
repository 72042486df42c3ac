from whisper_mxq import logs, quality

logs.to_file(snakemake.log)
p = snakemake.params
report = quality.evaluate(
    snakemake.input.model,
    list(snakemake.input.manifests),
    snakemake.input.reference,
    snakemake.input.encoder,
    snakemake.input.int8_encoder,
    snakemake.input.int8_decoder,
    quality.Settings(p.max_new_tokens, p.latency_runs, snakemake.threads),
    quality.settings_info(p.info, *snakemake.input.calib),
)
out = snakemake.output
quality.write_report(report, out.json, [out.wer, out.agreement, out.latency])
