"""The demo's Whisper tokenizer is transformers' own TikTokenConverter output, written in
the Hub's layout: its ids equal openai-whisper's tokenizer on every text tried, through
the fast tokenizer and the slow one (transformers 4.50's WhisperProcessor loads the
slow one), for both vocabularies. tests/test_pinned_stack.py runs the same comparison
under transformers 4.50.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from whisper_mxq import demo  # noqa: E402


def texts() -> list[str]:
    """Demo sentences in 8 scripts, English words in bulk, and seeded random strings
    mixing scripts, digits, punctuation, whitespace and emoji."""
    import whisper

    english = json.loads((Path(whisper.__file__).parent / "normalizers" / "english.json").read_text())
    words = list(english) + list(english.values())
    rng = random.Random(0)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 ,.!?'\"-\n\t éàüößçñ漢字かなカナ한국어Привет мир مرحبا नमस्ते ไทย😀🎉"
    )
    return (
        [s for v in demo.DEMO_SENTENCES.values() for s in v]
        + [" ".join(words[i : i + 40]) for i in range(0, len(words), 40)]
        + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 80))) for _ in range(800)]
        + ["aaaaaaaaaaaaaaaaaaaaaaa", " ", "   ", "'s'll'd've", "1234567890123", "\n\n\n", "hello<|en|>world"]
    )


def mismatches(english_only: bool) -> dict:
    """Texts whose ids differ from openai-whisper's, per tokenizer kind (a few shown)."""
    from transformers import WhisperTokenizer, WhisperTokenizerFast
    from whisper.tokenizer import get_tokenizer

    reference = get_tokenizer(multilingual=not english_only, num_languages=demo.NUM_LANGUAGES).encoding
    with tempfile.TemporaryDirectory() as folder:
        demo.write_tokenizer(folder, english_only)
        kinds = {"fast": WhisperTokenizerFast.from_pretrained(folder), "slow": WhisperTokenizer.from_pretrained(folder)}
        out = {}
        for name, tok in kinds.items():
            wrong = [
                t
                for t in texts()
                if tok.encode(t, add_special_tokens=False) != reference.encode(t, allowed_special="all")
            ]
            specials = {t: tok.convert_tokens_to_ids(t) for t in reference._special_tokens}
            out[name] = {
                "texts": wrong[:3],
                "specials": {t: i for t, i in specials.items() if i != reference._special_tokens[t]},
                "size": len(tok) - reference.n_vocab,
            }
    return out


@pytest.mark.parametrize("english_only", [False, True], ids=["multilingual", "english"])
def test_converted_tokenizer_ids_equal_openai_whispers(english_only):
    pytest.importorskip("whisper")
    result = mismatches(english_only)
    assert result == {kind: {"texts": [], "specials": {}, "size": 0} for kind in ("fast", "slow")}


def test_the_conversion_is_transformers_own():
    """No hand-written BPE: the tokenizer.json is what TikTokenConverter produces."""
    from transformers.convert_slow_tokenizer import TikTokenConverter
    from whisper.tokenizer import get_encoding

    encoding = get_encoding("multilingual", num_languages=demo.NUM_LANGUAGES)
    converted = TikTokenConverter(
        vocab_file=demo._tiktoken_file("multilingual"),
        pattern=encoding._pat_str,
        extra_special_tokens=[],
        additional_special_tokens=[],
    ).converted()
    ours = json.loads(demo.tokenizer_json())
    assert ours["model"]["merges"] == json.loads(converted.to_str())["model"]["merges"]
    assert ours["model"]["vocab"] == json.loads(converted.to_str())["model"]["vocab"]


if __name__ == "__main__":  # run by tests/test_pinned_stack.py under the pinned transformers
    print(json.dumps({kind: mismatches(kind == "english") for kind in ("multilingual", "english")}))
