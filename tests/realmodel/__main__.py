"""python -m tests.realmodel build OUT_DIR [--cache DIR]
python -m tests.realmodel build-multilingual OUT_DIR [--cache DIR]

Builds OpenAI's tiny.en (transformers folder and openai-whisper .pt), the FLEURS-layout
speech folder and a workflow config into OUT_DIR; prints the timings and clip counts.
Archives are cached in --cache (default $WHISPER_MXQ_TEST_CACHE or
~/.cache/whisper-mxq-tests).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import build, multilingual


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.realmodel")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="model, label model, speech and config into OUT_DIR")
    b.add_argument("out_dir", type=Path)
    b.add_argument("--cache", type=Path, default=None)
    m = sub.add_parser("build-multilingual", help="whisper-base, eight languages of speech and a config into OUT_DIR")
    m.add_argument("out_dir", type=Path)
    m.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "build-multilingual":
        summary = multilingual.build_all(args.out_dir, args.cache)
        counts = {"clips": len(summary["clips"])}
    else:
        summary = build.build(args.out_dir, args.cache)
        counts = summary["counts"]
    print(json.dumps({"out_dir": str(args.out_dir.resolve()), "counts": counts, "timings_s": summary["timings_s"]}))


if __name__ == "__main__":
    main()
