"""Step 1b: reference labels, a transcription and an English translation of every clip.

The tutorial's label model is openai-whisper's large-v3 (`labels.model`: an
openai-whisper name or `.pt` checkpoint); a Hugging Face Whisper (a Hub id or a
`save_pretrained` folder, for example the model being compiled) serves as well. Either
way one label job decodes its clips in batches, greedy at temperature 0, without
timestamps; clips are at most 30 s, so one window covers each. A batch is encoded once
and decoded twice (transcribe, translate).

On a GPU the openai-whisper model is built on the device in half precision and its
checkpoint loaded straight into it: `whisper.load_model` builds the fp32 model on the
CPU, initialises it at random, then loads the weights (~17 s for large-v3), and keeps
fp32 weights that every fp16 layer call casts again. The decoding itself is
openai-whisper's own `whisper.decode`, so the texts are the ones its one-clip loop gives.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from . import atomic, data
from .languages import whisper_code

log = logging.getLogger(__name__)

OPENAI_WHISPER = "openai-whisper"
TRANSFORMERS = "transformers"
# Per row of a decode batch, beyond the weights: cross-attention keys and values for the
# 1500 audio positions in every decoder layer, the audio features, and the encoder's
# activations while it runs. A row of large-v3 in fp16 measured ~0.25 GiB.
_BATCH_HEADROOM = 0.6  # of the GPU's memory: room for the weights and a job beside
MAX_GPU_BATCH, CPU_BATCH = 256, 8


def model_format(value: str) -> str:
    """`labels.model`: an openai-whisper checkpoint (`.pt`, or one of its model names,
    which have no `/`), else a Hugging Face Whisper (a Hub id `org/name` or a folder)."""
    if value.endswith(".pt") or ("/" not in value and not os.path.isdir(value)):
        return OPENAI_WHISPER
    return TRANSFORMERS


# --- openai-whisper ------------------------------------------------------------------
def load_openai_whisper(path: str, device: str):
    """An openai-whisper checkpoint on `device`: fp16 weights on a GPU (layer norms stay
    fp32, as openai-whisper computes them in fp32), built there directly."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    dims = ModelDimensions(**checkpoint["dims"])
    with torch.device(device):
        model = Whisper(dims)
    model.load_state_dict(checkpoint["model_state_dict"])
    if str(device).startswith("cuda"):
        model.half()
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.float()
    return model.eval()


def _openai_decoder(model):
    """(encode, decode) on openai-whisper: decode(features, languages, task, max_tokens)
    is `whisper.decode` with each row's language forced (a batch may mix languages)."""
    import torch
    import whisper
    from whisper.decoding import DecodingTask
    from whisper.tokenizer import get_tokenizer

    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    fp16 = model.device.type == "cuda"

    class Task(DecodingTask):
        """openai-whisper's decode; where it would detect each row's language (options
        without one), the row's own is written into the prompt instead."""

        def __init__(self, options, languages: list[str]):
            super().__init__(model, options)
            self.languages = languages

        def _detect_language(self, audio_features, tokens):
            if model.is_multilingual:
                ids = [tokenizer.to_language_token(lang) for lang in self.languages]
                tokens[:, self.sot_index + 1] = torch.tensor(ids, device=tokens.device)
            return self.languages, None

    def encode(mels):
        with torch.no_grad():
            return model.encoder(mels.to(model.device, torch.float16 if fp16 else torch.float32))

    def decode(features, languages: list[str], task: str, max_tokens: int) -> list[str]:
        options = whisper.DecodingOptions(
            task=task,
            without_timestamps=True,
            fp16=fp16,
            sample_len=max_tokens,
            # -1: openai-whisper's usual non-speech set. <|notimestamps|> is prompt-only
            # without timestamps; a weak model that emits it would leak it into the text.
            suppress_tokens=[-1, tokenizer.no_timestamps],
        )
        with torch.no_grad():
            return [r.text.strip() for r in Task(options, languages).run(features)]

    return encode, decode


def _openai_mel(path: str):
    """A clip's log-mel as openai-whisper's own decode takes it (computed on the CPU, as
    its transcribe does), the mel bins read from the checkpoint's dimensions."""
    import torch
    import whisper

    n_mels = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["dims"]["n_mels"]
    return lambda clip: whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(clip)), n_mels=n_mels)


def _openai_labeler(path: str, device: str):
    """(encode, decode, multilingual, bytes a batch row needs) of an openai-whisper checkpoint."""
    model = load_openai_whisper(path, device)
    encode, decode = _openai_decoder(model)
    dims = model.dims
    return encode, decode, model.is_multilingual, _row_bytes(dims.n_audio_ctx, dims.n_text_state, dims.n_text_layer)


# --- Hugging Face Whisper ------------------------------------------------------------
def _transformers_mel(snapshot: str):
    from . import models

    fe = models.load_processor(snapshot).feature_extractor
    return lambda clip: fe(clip, sampling_rate=16_000, return_tensors="pt").input_features[0]


def _transformers_labeler(snapshot: str, device: str):
    """(encode, decode, multilingual, bytes a batch row needs) of a Hugging Face Whisper:
    transformers' own generate, each row's language forced."""
    import torch

    from . import models

    model = models.load_model(snapshot, device)
    if model.device.type == "cuda":
        model = model.half()
    tokenizer = models.load_processor(snapshot).tokenizer
    multilingual = models.is_multilingual(snapshot)

    def encode(features):
        with torch.no_grad():
            return model.get_encoder()(features.to(model.device, model.dtype)).last_hidden_state

    def decode(states, languages: list[str], task: str, max_tokens: int) -> list[str]:
        from transformers.modeling_outputs import BaseModelOutput

        kwargs = {"language": languages, "task": task} if multilingual else {}
        with torch.no_grad():
            ids = model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=states),
                max_new_tokens=max_tokens,
                return_timestamps=False,
                **kwargs,
            )
        return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]

    cfg = model.config
    return encode, decode, multilingual, _row_bytes(cfg.max_source_positions, cfg.d_model, cfg.decoder_layers)


def batch_size(setting: int | str, device: str, per_row_bytes: int) -> int:
    """`auto`: as many rows as fit a share of the GPU's memory (at most MAX_GPU_BATCH),
    or CPU_BATCH on a CPU. The GPU's total, not its free memory: a batch size that
    followed what other jobs hold would make the labels differ from run to run (half
    precision rounds differently at another batch shape)."""
    if setting != "auto":
        return int(setting)
    if not str(device).startswith("cuda"):
        return CPU_BATCH
    import torch

    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return max(1, min(MAX_GPU_BATCH, int(total * _BATCH_HEADROOM // per_row_bytes)))


def _row_bytes(n_audio_ctx: int, d_model: int, n_layers: int, bytes_per_value: int = 2) -> int:
    """Cross-attention keys/values of every layer plus the encoder's widest activation
    (4 d_model per position), per row, in fp16."""
    return n_audio_ctx * d_model * bytes_per_value * (2 * n_layers + 8)


def label_job(
    model_source: str,
    model_path: str,
    manifest_path: str,
    stamp_path: str,
    out_json: str,
    *,
    batch_size_setting: int | str = "auto",
    max_tokens: int = 224,
    device: str = "cpu",
    threads: int = 2,
) -> dict:
    """Transcribe and translate every clip of one download job -> `out_json`:
    {file: {language, transcription, translation}}, in the job's order. Clips are read
    and turned into log-mel on `threads` threads, a batch ahead of the device, while the
    model loads and the device decodes."""
    import torch

    # the rule's threads, not every core (never more than torch's default, one a core)
    torch.set_num_threads(max(1, min(threads, torch.get_num_threads())))
    manifest = data.read_manifest(stamp_path, manifest_path)
    samples = data.manifest_samples(manifest)
    load_clip = data.clip_checker(manifest)
    openai = model_format(model_source) == OPENAI_WHISPER
    mel = (_openai_mel if openai else _transformers_mel)(model_path)
    labels: dict[str, dict] = {}
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="mel") as pool:
        made: dict = {}

        def ahead(first: int, last: int) -> None:  # clips first..last-1 queued, once
            for i in range(first, min(last, len(samples))):
                if i not in made:
                    made[i] = pool.submit(lambda s: mel(load_clip(s["wav"])), samples[i])

        try:
            ahead(0, CPU_BATCH)  # while the model loads
            encode, decode, multilingual, per_row = (_openai_labeler if openai else _transformers_labeler)(
                model_path, device
            )
            foreign = sorted({s["language"] for s in samples if whisper_code(s["language"]) != "en"})
            if not multilingual and foreign:
                raise ValueError(
                    f"config key 'labels.model': {model_source} is English-only and cannot label {foreign}"
                )
            rows = batch_size(batch_size_setting, device, per_row)
            log.info("labelling %d clips in batches of %d on %s", len(samples), rows, device)
            for start in range(0, len(samples), rows):
                batch = samples[start : start + rows]
                ahead(start, start + 2 * rows)  # this batch and the next
                features = encode(torch.stack([made.pop(i).result() for i in range(start, start + len(batch))]))
                # Batches mix languages (each row's prompt carries its own): they stay full.
                languages = [whisper_code(s["language"]) for s in batch]
                texts = decode(features, languages, "transcribe", max_tokens)
                # An English-only model has no translate task; English audio is its own translation.
                translations = decode(features, languages, "translate", max_tokens) if multilingual else texts
                for s, text, translation in zip(batch, texts, translations, strict=True):
                    labels[s["file"]] = {"language": s["language"], "transcription": text, "translation": translation}
        except BaseException:
            # no more clips once the job has failed: queued ones are dropped
            pool.shutdown(cancel_futures=True)
            raise
    ordered = {s["file"]: labels[s["file"]] for s in samples}
    atomic.write_json(out_json, {"labels": ordered})
    return ordered


def merge_labels(job_jsons: list[str], transcriptions_path: str, translations_path: str) -> None:
    """Label jobs' outputs -> the tutorial's transcriptions.json and translations.json."""
    transcriptions: dict[str, str] = {}
    translations: dict[str, dict] = {}
    for path in job_jsons:
        for file, label in atomic.read_json(path)["labels"].items():
            lang = label["language"]
            transcriptions[file] = label["transcription"]
            translations[file] = {
                "source_language_fleurs": lang,
                "source_language_whisper": whisper_code(lang),
                "target_language": "en",
                "translation": label["translation"],
            }
    atomic.write_json(transcriptions_path, transcriptions)
    atomic.write_json(translations_path, translations)
