"""Quality metrics: how far INT8 strays from FP32, and both from the references.

Word and character error rates come from jiwer after Whisper's own text normalizers,
BLEU from sacrebleu; every rate is None (never NaN, which is not JSON) when no clip
could be scored.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from .languages import UNSEGMENTED, whisper_code

# A decode that repeats a span of up to this many tokens this many times back to back
# has fallen into a loop (trained models under bad quantization do this: the text
# repeats until the token cap).
REPEAT_SPAN, REPEAT_TIMES = 8, 4
# openai-whisper's own test for a degenerate decode (its `compression_ratio_threshold`,
# after which it falls back to sampling): text that gzip shrinks this much repeats itself.
MAX_COMPRESSION_RATIO = 2.4


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float | None:
    """Signal-to-quantization-noise ratio, 10 log10(|x|^2 / |x - y|^2), in dB; None for
    identical arrays (infinite) or an all-zero reference, which JSON cannot hold either."""
    noise = float(np.sum((reference.astype(np.float64) - test) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0 or signal == 0:  # infinite, or no signal to measure against
        return None
    return float(10 * np.log10(signal / noise))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def normalizer(lang: str) -> Callable[[str], str]:
    """Whisper's own: the English normalizer for English, the basic one elsewhere."""
    from whisper.normalizers import BasicTextNormalizer, EnglishTextNormalizer

    return EnglishTextNormalizer() if whisper_code(lang) == "en" else BasicTextNormalizer()


def verdict_metric(lang: str) -> str:
    """ "cer" for languages written without spaces between words (a WER there counts
    whole sentences), else "wer"; Whisper's own FLEURS tables do the same."""
    return "cer" if whisper_code(lang) in UNSEGMENTED else "wer"


def error_rates(references: list[str], hypotheses: list[str]) -> tuple[float | None, float | None]:
    """Corpus WER and CER over the pairs whose reference is not empty (an empty reference
    has no error rate; callers record why a clip was left out)."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return None, None
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    return float(jiwer.wer(refs, hyps)), float(jiwer.cer(refs, hyps))


def bleu(references: list[str], hypotheses: list[str]) -> float | None:
    """Corpus BLEU (sacrebleu's defaults: 13a tokenization, 0-100) over pairs with a
    non-empty reference."""
    import sacrebleu

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return None
    return float(sacrebleu.corpus_bleu([h for _, h in pairs], [[r for r, _ in pairs]]).score)


def top1_agreement(tokens: list[int], start: int, logits: np.ndarray, allowed: np.ndarray) -> float | None:
    """Share of positions where a decoder fed the FP32 tokens (teacher forcing) picks the
    token FP32 picked, over the ids greedy decoding may pick (`allowed`, a bool mask)."""
    if len(tokens) <= start:
        return None
    scores = np.where(allowed, logits[start - 1 : len(tokens) - 1], -np.inf)
    return float(np.mean(np.argmax(scores, axis=-1) == np.asarray(tokens[start:])))


def text_part(ids: list[int], start: int, eot: int) -> list[int]:
    """The generated tokens up to, not including, the first end-of-text."""
    out = ids[start:]
    return out[: out.index(eot)] if eot in out else out


def first_divergence(a: list[int], b: list[int], start: int, eot: int) -> dict | None:
    """Where two decodes of one clip first pick different text tokens (position counted
    from the first generated token), or None when their texts agree. End-of-text is not
    text: a decode that kept it and one that stopped at the cap without it, with the same
    tokens before, agree."""
    a, b = text_part(a, start, eot), text_part(b, start, eot)
    for k in range(max(len(a), len(b))):
        x = a[k] if k < len(a) else None
        y = b[k] if k < len(b) else None
        if x != y:
            return {"position": k, "fp32": x, "int8": y}
    return None


def compression_ratio(text: str) -> float:
    """len(text) / len(gzip(text)) in UTF-8 bytes, as openai-whisper computes it."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def loop_reason(ids: list[int], start: int, eot: int, text: str, max_new: int) -> str | None:
    """Why a decode has run away (repeats itself, or never ended), or None for one
    that ended. Whisper in deployment retries such a decode at a higher temperature;
    greedy evaluation keeps it and says so."""
    generated = ids[start:]
    reasons = []
    if is_repetitive(generated):
        reasons.append(f"a span of up to {REPEAT_SPAN} tokens repeats {REPEAT_TIMES} times")
    ratio = compression_ratio(text)
    if ratio > MAX_COMPRESSION_RATIO:
        reasons.append(f"compression ratio {ratio:.2f} > {MAX_COMPRESSION_RATIO}")
    if eot not in generated and len(generated) >= max_new:
        reasons.append(f"no end-of-text within {max_new} tokens")
    return "; ".join(reasons) or None


def is_repetitive(ids: list[int]) -> bool:
    """A span of 1..REPEAT_SPAN tokens repeated REPEAT_TIMES times back to back."""
    for n in range(1, REPEAT_SPAN + 1):
        for i in range(0, len(ids) - n * REPEAT_TIMES + 1):
            span = ids[i : i + n]
            if all(ids[i + k * n : i + (k + 1) * n] == span for k in range(1, REPEAT_TIMES)):
                return True
    return False


def rate(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None
