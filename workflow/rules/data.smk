# Step 1a: FLEURS -> 16 kHz mono WAVs, one download job per job of the plan (common.smk).
# A job's outputs are its clips, its manifest and its stamp; the jobs that read the
# clips declare the stamp only (layout.DOWNLOAD_STAMP says why).

# A local source, per language: the checksums of the files its downloads read. Their
# inputs are those files, so a changed shard or clip is named in the dry run's `reason:`;
# an audio folder's list is shared by every language, so its rows stand for it (params).
for _stamp, (_location, _split, _lang, _files, _rows) in SOURCE_STAMPS.items():
    _name = (
        f"{'source' if _stamp == layout.SOURCE_STAMP.format(lang=_lang) else 'eval_source'}_{_lang}"
    )

    rule:
        name:
            _name
        input:
            files=_files,
            source=source_folder(_location),  # for staging only
        output:
            _stamp,
        log:
            f"logs/{os.path.basename(os.path.dirname(_stamp))}/{_lang}.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        params:
            source=source_param(_location),
            split=_split,
            lang=_lang,
            rows=_rows,
        message:
            job_message(_name, f"{len(_files)} files of {_location}")
        script:
            "../scripts/source_stamp.py"


for _job in JOBS:

    rule:
        name:
            f"download_{_job.name}"
        input:
            source=source_folder(config["fleurs"]["source"]),
            languages=source_stamps(
                config["fleurs"]["source"], config["fleurs"]["split"], _job.languages
            ),
            # where the job before it stopped reading each language; ancient: a re-download
            # of that job (a clip deleted) does not move the rows, and a changed config
            # reruns this job through its params anyway
            continues=[
                ancient(s) for _, _, s in download_parts(JOBS, _job, layout.DOWNLOAD_STAMP) if s
            ],
        output:
            wavs=paths(layout.AUDIO, _job.samples),
            manifest=layout.MANIFEST.format(job=_job.name),
            stamp=stamp(_job),
        log:
            f"logs/download/{_job.name}.log",
        benchmark:
            f"benchmarks/download/{_job.name}.tsv"
        retries: 2
        localrule: True  # fetches from the internet: runs on the submit host
        conda:
            "../../envs/data.yaml"
        threads: 4  # languages read at once
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            parts=download_parts(JOBS, _job, layout.DOWNLOAD_STAMP),
            source=source_param(config["fleurs"]["source"]),
            split=config["fleurs"]["split"],
            max_skipped_fraction=config["data"]["max_skipped_fraction"],
        message:
            job_message(f"download_{_job.name}", clips(_job))
        script:
            "../scripts/download.py"


rule data:
    input:
        [stamp(job) for job in JOBS],
        lambda w: missing_files("data"),
    localrule: True
