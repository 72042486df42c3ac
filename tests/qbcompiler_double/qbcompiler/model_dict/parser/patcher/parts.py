"""load_for_part / available_parts, as qbcompiler 1.3 offers them (its guide:
`load_for_part(model_id, part, *, dtype=None, device=None, revision=None,
trust_remote_code=False)` loads the checkpoint with the class the parser expects for
that part, in eval mode). Earlier generations have no such module."""

from __future__ import annotations

from .... import GENERATION, _record

if GENERATION < (1, 3):
    raise ModuleNotFoundError(
        "No module named 'qbcompiler.model_dict.parser.patcher.parts'",
        name="qbcompiler.model_dict.parser.patcher.parts",
    )

WHISPER_PARTS = ["encoder", "decoder"]


def available_parts(model) -> list[str]:
    if type(model).__name__ != "WhisperForConditionalGeneration":
        raise ValueError(f"no parts declared for {type(model).__name__}")
    return list(WHISPER_PARTS)


def load_for_part(model_id, part, *, dtype=None, device=None, revision=None, trust_remote_code=False):
    from transformers import WhisperForConditionalGeneration

    if part not in WHISPER_PARTS:
        raise ValueError(f"load_for_part: unknown part {part!r} for a Whisper checkpoint")
    _record(
        "load_for_part",
        model_id=str(model_id),
        part=part,
        dtype=str(dtype),
        device=str(device),
        trust_remote_code=trust_remote_code,
    )
    model = WhisperForConditionalGeneration.from_pretrained(
        model_id, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code
    )
    return model.to(device).eval() if device is not None else model.eval()
