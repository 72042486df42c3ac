"""The README's commands do what it says: the rule graph example runs as written (its
target before --rulegraph, which would take a target after it as its own value), and
the docs it names exist."""

from __future__ import annotations

import re
import shlex

from conftest import REPO, offline_env, snakemake

README = (REPO / "README.md").read_text()


def test_rulegraph_example_runs_as_written(tmp_path):
    line = next(line for line in README.splitlines() if line.startswith("snakemake ") and "--rulegraph" in line)
    args = shlex.split(line.split("|")[0])[1:]
    proc = snakemake(tmp_path, *args, env=offline_env(double=False))
    graph = proc.stdout[proc.stdout.index("digraph") :]
    rules = set(re.findall(r'label = "(\w+)"', graph))
    assert {"mxq", "mblt", "decoder_calib", "calibrate_000", "snapshot_model"} <= rules
    assert not any(r.startswith("label_") for r in rules)  # the target's graph, not `all`'s


def test_readme_names_the_docs_a_newcomer_needs_and_they_exist():
    named = set(re.findall(r"docs/[\w-]+\.md", README))
    assert {"docs/runtime-bundle.md", "docs/slurm.md", "docs/configuration.md", "docs/performance.md"} <= named
    assert [d for d in sorted(named) if not (REPO / d).is_file()] == []
    assert 'python -m pytest -m "not slow"' in README
