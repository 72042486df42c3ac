"""Step 4: the runtime bundle, the model folder Mobilint's NPU runtime loads.

The NPU runs the encoder and the decoder layers from the two .mxq files; the host
tokenizes, computes log-mel features and the decoder input embed_tokens(ids) +
embed_positions (as the calibration does), so the folder carries the source model's
config (plus the runtime's keys), processor and generation config, and of its weights
only those two embedding tables.

The runtime is Mobilint's transformers-mblt (PyPI), whose MobilintWhisperConfig reads,
per part, `{part}_mxq_path`, `{part}_core_mode`, `{part}_target_cores` (single) or
`{part}_target_clusters` (multi, global4, global8), `{part}_target_device` and
`{part}_dev_no`; a missing core mode means `auto`, which only binaries of qbcompiler 1.3
or later support. So the bundle states the mode each binary was compiled for. An
`auto_map` pointing at a small proxy module (`proxy_whisper.py`, which imports
transformers-mblt's classes, as Mobilint's Hub folders do) lets
`AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True)` load it
without `transformers_mblt.register()`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import atomic, layout

RUNTIME_MODEL_TYPE = "mobilint-whisper"
RUNTIME_ARCHITECTURE = "MobilintWhisperForConditionalGeneration"
EMBEDDINGS = ("model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight")
SAFETENSORS_INDEX = "model.safetensors.index.json"  # sharded snapshots (large-v3 in fp32)
PREPROCESSOR_CONFIG = "preprocessor_config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"

PROXY_MODULE = "proxy_whisper"
PROXY_SOURCE = '''"""The classes of this model folder, from Mobilint's transformers-mblt.

`from_pretrained(folder, trust_remote_code=True)` runs this file (the folder's config.json
names it in auto_map); it defines nothing itself. Without transformers-mblt installed,
load it after `pip install transformers-mblt`.
"""

try:
    from transformers_mblt.models.whisper.configuration_whisper import MobilintWhisperConfig
    from transformers_mblt.models.whisper.modeling_whisper import MobilintWhisperForConditionalGeneration
    from transformers_mblt.models.whisper.processing_whisper import MobilintWhisperFeatureExtractor
except ModuleNotFoundError as e:
    if e.name != "transformers_mblt":
        raise
    raise ImportError(
        "this model runs on a Mobilint NPU through transformers-mblt: pip install transformers-mblt"
    ) from e

__all__ = ["MobilintWhisperConfig", "MobilintWhisperFeatureExtractor", "MobilintWhisperForConditionalGeneration"]
'''
AUTO_MAP = {
    "AutoConfig": f"{PROXY_MODULE}.MobilintWhisperConfig",
    "AutoModelForSpeechSeq2Seq": f"{PROXY_MODULE}.MobilintWhisperForConditionalGeneration",
}
FEATURE_EXTRACTOR = "MobilintWhisperFeatureExtractor"
FEATURE_EXTRACTOR_AUTO_MAP = {"AutoFeatureExtractor": f"{PROXY_MODULE}.{FEATURE_EXTRACTOR}"}

# Where each part runs. ARIES has two clusters of four cores, REGULUS one core. Mobilint
# puts the encoder on cluster 0 and the decoder on cluster 1 of ARIES, each on one core
# (prepare_model.py of their STT tutorial); a part compiled for a cluster-wide scheme
# takes its whole cluster, global8 both.
CLUSTER = {"encoder": 0, "decoder": 1}
CLUSTER_MODES = ("multi", "global4", "global8")


def core_mode(scheme: str | None) -> str:
    """The runtime mode for a binary compiled with `scheme`: `all` runs in any mode, and
    the runtime is given single, as Mobilint's STT folders are; no scheme (the tutorial's
    decoder) is qbcompiler's default, run as single too."""
    return scheme if scheme in ("single",) + CLUSTER_MODES else "single"


def placement(target_device: str, schemes: dict[str, str | None], dev_no: int = 0) -> dict:
    """MobilintWhisperConfig's per-part keys for binaries compiled for `target_device`
    with `schemes` ({part: inference_scheme})."""
    keys = {}
    for part, scheme in schemes.items():
        mode = core_mode(scheme)
        cluster = 0 if target_device.startswith("regulus") else CLUSTER[part]
        keys.update({f"{part}_core_mode": mode, f"{part}_target_device": target_device, f"{part}_dev_no": dev_no})
        if mode == "single":
            keys[f"{part}_target_cores"] = [f"{cluster}:0"]
        else:
            keys[f"{part}_target_clusters"] = [0, 1] if mode == "global8" else [cluster]
    return keys


TUTORIAL_SCHEMES = {"encoder": "global4", "decoder": None}  # the default compile's, on ARIES


def runtime_config(
    base: dict, encoder_mxq: str, decoder_mxq: str, dev_no: int = 0, runtime: dict | None = None
) -> dict:
    """The base WhisperConfig (all fields, as the runtime may run another transformers
    with other defaults) plus what the runtime reads: .mxq names inside the folder, where
    each part runs (`runtime`, from placement) and the auto_map to the proxy module."""
    if base.get("model_type") != "whisper":
        raise ValueError(f"not a Whisper config (model_type {base.get('model_type')!r})")
    config = {k: v for k, v in base.items() if k != "_name_or_path"}  # no host paths
    config.update(
        model_type=RUNTIME_MODEL_TYPE,
        encoder_mxq_path=encoder_mxq,
        decoder_mxq_path=decoder_mxq,
        dev_no=dev_no,  # read by older runtimes; transformers-mblt reads the per-part keys
        architectures=[RUNTIME_ARCHITECTURE],
        auto_map=dict(AUTO_MAP),
        **(runtime if runtime is not None else placement("aries-rb", TUTORIAL_SCHEMES, dev_no)),
    )
    return config


def _weight_files(snapshot: str) -> dict[str, str]:
    """Tensor name -> safetensors file holding it, for a single-file or sharded snapshot."""
    folder = Path(snapshot)
    index = folder / SAFETENSORS_INDEX
    if index.exists():
        return {k: str(folder / f) for k, f in atomic.read_json(index)["weight_map"].items()}
    single = folder / layout.BUNDLE_EMBEDDINGS
    if not single.exists():
        raise FileNotFoundError(f"{snapshot}: no {single.name} nor {SAFETENSORS_INDEX}")
    from safetensors import safe_open

    with safe_open(single, framework="pt") as f:
        return {k: str(single) for k in f.keys()}


def read_embeddings(snapshot: str) -> dict:
    """The decoder's token and position tables, read lazily: never the whole model."""
    from safetensors import safe_open

    files = _weight_files(snapshot)
    missing = [k for k in EMBEDDINGS if k not in files]
    if missing:
        raise KeyError(f"{snapshot}: weights lack {missing}")
    tables = {}
    for key in EMBEDDINGS:
        with safe_open(files[key], framework="pt") as f:
            tables[key] = f.get_tensor(key).contiguous()
    return tables


def write_embeddings(path: str | os.PathLike, tables: dict) -> None:
    from safetensors.torch import save_file

    # format=pt: what transformers' from_pretrained checks in the header.
    save_file(tables, str(path), metadata={"format": "pt"})


def build_bundle(
    snapshot: str, encoder_mxq: str, decoder_mxq: str, out_dir: str, runtime: dict | None = None, dev_no: int = 0
) -> None:
    """Model snapshot + compiled .mxq files -> the runtime folder `out_dir`, atomically.
    `runtime`: placement() of the compile; default, the tutorial recipe's on ARIES."""
    from transformers import GenerationConfig, WhisperConfig

    from .models import load_processor

    enc_name, dec_name = os.path.basename(encoder_mxq), os.path.basename(decoder_mxq)
    if enc_name == dec_name:
        raise ValueError(f"encoder and decoder .mxq share the name {enc_name!r}")
    base = WhisperConfig.from_pretrained(snapshot, local_files_only=True).to_dict()
    processor = load_processor(snapshot)
    generation = GenerationConfig.from_pretrained(snapshot, local_files_only=True)
    tables = read_embeddings(snapshot)
    # Staged beside out_dir and renamed: the runtime never finds one .mxq and no config.
    with atomic.atomic_dir(out_dir) as tmp:
        shutil.copyfile(encoder_mxq, tmp / enc_name)
        shutil.copyfile(decoder_mxq, tmp / dec_name)
        processor.save_pretrained(tmp)
        # preprocessor_config.json too: transformers 4.x (beside the runtime) reads it,
        # transformers 5 reads processor_config.json.
        processor.feature_extractor.save_pretrained(tmp)
        generation.save_pretrained(tmp)
        write_embeddings(tmp / layout.BUNDLE_EMBEDDINGS, tables)
        point_feature_extractor_at_proxy(tmp / PREPROCESSOR_CONFIG)
        portable_tokenizer_config(tmp / TOKENIZER_CONFIG)
        (tmp / f"{PROXY_MODULE}.py").write_text(PROXY_SOURCE, encoding="utf-8")
        atomic.write_json(tmp / layout.BUNDLE_CONFIG, runtime_config(base, enc_name, dec_name, dev_no, runtime))
        make_readable(tmp)


def point_feature_extractor_at_proxy(path: Path) -> None:
    """Name Mobilint's feature extractor (Whisper's, plus the frame counts its timestamp
    decoding needs) with its auto_map, as Mobilint's Hub folders do."""
    fe = atomic.read_json(path)
    fe.update(feature_extractor_type=FEATURE_EXTRACTOR, auto_map=dict(FEATURE_EXTRACTOR_AUTO_MAP))
    atomic.write_json(path, fe)


def portable_tokenizer_config(path: Path) -> None:
    """transformers 5 saves the special tokens as a list under `extra_special_tokens`,
    which transformers 4 (the runtime supports 4.54 to 5.17) reads as a mapping and fails
    on; both read the list under its older name, `additional_special_tokens`."""
    tc = atomic.read_json(path)
    extra = tc.get("extra_special_tokens")
    if isinstance(extra, list):
        del tc["extra_special_tokens"]
        tc.setdefault("additional_special_tokens", extra)
        atomic.write_json(path, tc)


def make_readable(folder: Path) -> None:
    """Files as a plain open() makes them: some writers (safetensors) create them 0600,
    which keeps a runtime under another user out of the bundle."""
    mode = 0o666 & ~atomic.current_umask()
    for f in folder.rglob("*"):
        if f.is_file():
            f.chmod(mode)
