"""Whisper -> Mobilint NPU compilation workflow: the logic behind the Snakemake rules.

Modules follow the tutorial's steps: data (FLEURS download), labels (reference
transcriptions and translations), calibration (encoder and decoder), compile
(qbcompiler), plus the shared pieces they use (languages, layout, audio, models).
Nothing here imports Snakemake.
"""
