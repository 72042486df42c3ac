"""qbcompiler: clear failure without it; every API generation detected and called as it
wants; recipes, boards and config objects checked before any job; the .mxq's inputs
checked against the calibration after the compile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whisper_mxq import compile_recipes as recipes

from conftest import OFFLINE, REPO, copy_run, offline_env, read_calls, snakemake

MODEL = "whisper-tiny-random"
MXQS = [f"compiled/{MODEL}_{p}.mxq" for p in ("encoder", "decoder")]
QBRUNTIME_DOUBLE = REPO / "tests" / "qbruntime_double"
GENERATIONS = ("0.12.0", "1.0.1", "1.1.2", "1.2.0", "1.3.0")


def double_env(version: str, qbruntime: bool = False, **extra) -> dict:
    env = offline_env(QBCOMPILER_DOUBLE_VERSION=version, **extra)
    if qbruntime:
        env["PYTHONPATH"] += f":{QBRUNTIME_DOUBLE}"
    return env


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


# --- without qbcompiler -------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", ["-j1", "-j2"])
def test_mxq_target_fails_at_once_without_qbcompiler(tmp_path, jobs):
    """The compile's first job finds qbcompiler missing and says what to install. It
    needs nothing and goes first: with one job slot, nothing else has run; with two, at
    most a job started beside it (no calibration, no binary)."""
    start = time.monotonic()
    proc = snakemake(
        tmp_path,
        f"compiled/{MODEL}_encoder.mxq",
        jobs,
        "--configfile",
        str(OFFLINE),
        env=offline_env(double=False),
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule qbcompiler" in out and "dl.mobilint.com" in out
    assert not (tmp_path / "calibration").exists()
    assert not list(tmp_path.glob("compiled/*.mxq")) and not list(tmp_path.glob("compiled/*.mblt"))
    if jobs == "-j1":
        assert not (tmp_path / "demo").exists() and not (tmp_path / "data").exists()
    assert time.monotonic() - start < 60


def test_dry_run_does_not_need_qbcompiler(tmp_path):
    proc = snakemake(tmp_path, "-n", "-j2", "compiled/whisper-small_decoder.mxq", env=offline_env(double=False))
    assert "mxq" in proc.stdout


def test_missing_qbcompiler_message_names_the_source():
    code = "from whisper_mxq import compile as c; c.import_qbcompiler()"
    proc = run_python(code, offline_env(double=False))
    assert proc.returncode != 0
    assert "QbcompilerMissing" in proc.stderr and "dl.mobilint.com" in proc.stderr


# --- API detection, one generation at a time ------------------------------------------------------
@pytest.mark.parametrize(
    "version, expected",
    [
        ("0.12.0", {"generation": "0.12", "use_full_seq_len_calib": True}),
        ("1.0.1", {"generation": "1.0", "apply": True, "use_full_seq_length": True}),
        ("1.1.2", {"apply": True, "attributes": {"calibration": {"use_full_seq_length": True}}}),
        ("1.3.0", {"apply": True, "attributes": {"calibration": {"use_full_seq_length": True}}}),
    ],
)
def test_llm_config_follows_installed_release(version, expected):
    code = (
        "import json, qbcompiler; from whisper_mxq import compile as c; x = c.build_configs(qbcompiler, c.api(qbcompiler), c.plan({}, 'decoder'))['llm_config']; "
        "print(json.dumps({'class': type(x).__name__, 'value': x.to_dict() if hasattr(x, 'to_dict') else x}))"
    )
    proc = run_python(code, double_env(version))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["value"] == expected
    assert out["class"] == ("dict" if version < "1.1" else "LlmConfig")


# What each generation refuses, as the real release would; run in the double's process.
REFUSALS = {
    "1.0.1": [
        ("mxq_compile(model=m, calib_data_path=c, save_path=s, device='gpu')", "device 'gpu'"),
        (
            "mxq_compile(model=m, calib_data_path=c, save_path=s, device='cuda', target_device='aries-rb')",
            "target_device",
        ),
    ],
    "1.1.2": [
        ("mxq_compile(model=m, calib_data_path=c, save_path=s, device='cuda')", "device 'cuda'"),
        (
            "mxq_compile(model=m, calib_data_path=c, save_path=s, target_device='aries-rb')",
            "Unsupported device name: 'aries-rb'",
        ),
        (
            "configs.LlmConfig(apply=True, attributes={'calibration': {'use_full_seq': True}})",
            "attributes.calibration.use_full_seq",
        ),
        ("mxq_compile(model=m, calib_data_path=c, save_path=s, llm_config={'apply': True})", "must be a LlmConfig"),
    ],
    "1.2.0": [
        (
            "mxq_compile(model=m, calib_data_path=c, save_path=s, target_device='aries2')",
            "Unsupported device name: 'aries2'",
        ),
        ("configs.HessianQuantConfig", "HessianQuantConfig"),
    ],
    "1.3.0": [
        ("mxq_compile(model=m, calib_data_path=c, save_path=s)", "missing required keyword argument 'target_device'"),
        (
            "mblt_compile(model=w, mblt_save_path=s, backend='hf', target_device='aries-rb', model_part='encoder')",
            "unknown backend 'hf'",
        ),
        ("mblt_compile(model=w, mblt_save_path=s, backend='torch', target_device='aries-rb')", "pass model_part"),
        (
            "mxq_compile(model=m, calib_data_path=c, save_path=s, target_device='regulus-rb', inference_scheme='all')",
            "only inference_scheme='single'",
        ),
        (
            "mxq_compile(model=m, calib_data_path=c, save_path=s, target_device='aries-rb', bit_config=configs.BitConfig(transformer={'weigth': {}}))",
            "transformer.weigth",
        ),
        (
            "mxq_compile(model=m, calib_data_path=c, save_path=s, target_device='aries-rb', hesian_quant_config=None)",
            "unexpected keyword argument 'hesian_quant_config'",
        ),
    ],
}


@pytest.mark.parametrize("version", sorted(REFUSALS))
def test_double_refuses_what_the_release_refuses(version, tmp_path):
    import numpy as np

    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((1, 3000, 80), np.float32))
    (tmp_path / "list.txt").write_text(f"{npy}\n")
    mblt = tmp_path / "m.mblt"
    target = {"1.1.2": "aries2", "1.2.0": "aries-rb", "1.3.0": "aries-rb"}.get(version, "aries")
    setup = (
        "import qbcompiler, fake_mxq, types; from qbcompiler import *; "
        "configs = getattr(qbcompiler, 'configs', None); "
        f"fake_mxq.write({str(mblt)!r}, {{'part': 'encoder', 'target_device': {target!r}, 'input_shapes': [[1, 3000, 80]], 'output_shapes': []}}); "
        f"m, c, s = {str(mblt)!r}, {str(tmp_path / 'list.txt')!r}, {str(tmp_path / 'out.mxq')!r}; "
        "w = type('WhisperForConditionalGeneration', (), {})(); w.model = types.SimpleNamespace(encoder=1); "
    )
    for call, message in REFUSALS[version]:
        proc = run_python(setup + call, double_env(version))
        assert proc.returncode != 0, f"{version} accepted {call}"
        assert message in proc.stderr, (call, proc.stderr[-800:])
        assert not (tmp_path / "out.mxq").exists()


def test_double_refuses_bad_calibration_files(tmp_path):
    import numpy as np

    good, wrong, pickled = tmp_path / "good.npy", tmp_path / "wrong.npy", tmp_path / "pickled.npy"
    np.save(good, np.zeros((1, 3000, 80), np.float32))
    np.save(wrong, np.zeros((1, 3000, 128), np.float32))
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:200])
    mblt = tmp_path / "m.mblt"
    for bad, message in [
        (wrong, "does not fit the graph input"),
        (pickled, "allow_pickle"),
        (truncated, ""),
        (tmp_path / "missing.npy", "No such file"),
    ]:
        (tmp_path / "list.txt").write_text(f"{good}\n{bad}\n")
        code = (
            "import qbcompiler, fake_mxq; "
            f"fake_mxq.write({str(mblt)!r}, {{'part': 'encoder', 'target_device': 'aries-rb', 'input_shapes': [[1, 3000, 80]], 'output_shapes': []}}); "
            f"qbcompiler.mxq_compile(model={str(mblt)!r}, calib_data_path={str(tmp_path / 'list.txt')!r}, "
            f"save_path={str(tmp_path / 'out.mxq')!r}, target_device='aries-rb')"
        )
        proc = run_python(code, double_env("1.3.0"))
        assert proc.returncode != 0 and message in proc.stderr, (bad, proc.stderr[-500:])
        assert not (tmp_path / "out.mxq").exists()


# --- the demo's compile through each generation ------------------------------------------------------
def config_file(folder: Path, **top) -> str:
    """A config layered over the offline one, as a user's --configfile is (YAML, so
    numbers stay numbers)."""
    path = folder / "over.yaml"
    path.write_text(json.dumps(top))  # JSON is YAML
    return str(path)


def compile_demo(work: Path, version: str, compile_cfg: dict, qbruntime: bool = True, check: bool = True, **env):
    """Re-run both compile steps of a finished demo with another qbcompiler double."""
    log = work / f"calls-{version}.jsonl"
    proc = snakemake(
        work,
        *MXQS,
        "-j2",
        "--forcerun",
        "mblt",
        "mxq",
        "--configfile",
        str(OFFLINE),
        config_file(work, compile=compile_cfg),
        env=double_env(version, qbruntime, QBCOMPILER_DOUBLE_LOG=str(log), **env),
        check=check,
    )
    return proc, read_calls(log)


def by_part(calls: list[dict], call: str) -> dict[str, dict]:
    out = {}
    for c in calls:
        if c["call"] == call:
            part = c.get("target") or c.get("model_part") or c.get("part")
            if call == "mxq_compile":
                part = "encoder" if c["calib_data_path"].endswith(".txt") else "decoder"
            out[part] = c
    return out


TUTORIAL_LLM = {
    "0.12.0": {"generation": "0.12", "use_full_seq_len_calib": True},
    "1.0.1": {"generation": "1.0", "apply": True, "use_full_seq_length": True},
}
NEW_LLM = {"class": "LlmConfig", "apply": True, "attributes": {"calibration": {"use_full_seq_length": True}}}
# The board each generation's run compiles for, and its name as the release spells it.
TARGET = {
    "0.12.0": ("aries-rb", None),
    "1.0.1": ("aries-rb", None),
    "1.1.2": ("regulus-rb", "regulus2"),
    "1.2.0": ("regulus-rb", "regulus-rb"),
    "1.3.0": ("aries-rb", "aries-rb"),
}


@pytest.mark.slow
@pytest.mark.parametrize("version", GENERATIONS)
def test_demo_compiles_through_each_generation(demo_run, tmp_path, version):
    """The tutorial recipe as each release spells it (REGULUS where the release has a
    target_device: Mobilint's REGULUS scripts of that time); the binary's inputs checked
    against the calibration by the qbruntime double."""
    work = copy_run(demo_run, tmp_path / "run")
    target, spelled = TARGET[version]
    _, calls = compile_demo(work, version, {"device": "cuda", "target_device": target})
    mblt, mxq = by_part(calls, "mblt_compile"), by_part(calls, "mxq_compile")
    assert set(mblt) == set(mxq) == {"encoder", "decoder"}
    new_parser = version >= "1.3"
    loads = [c["part"] for c in calls if c["call"] == "load_for_part"]
    assert sorted(loads) == (["decoder", "encoder"] if new_parser else [])
    if new_parser:
        assert mblt["encoder"]["backend"] == mblt["decoder"]["backend"] == "torch"
        assert mblt["encoder"]["feed_dict"] == {"input_features": {"tensor_shape": [1, 80, 3000]}}
        assert mblt["decoder"]["model_part_options"] is None  # last_token_only is mobilint-1.3's
    else:
        assert mblt["encoder"]["backend"] == ("torch" if version < "1.1" else "hf")
        assert mblt["decoder"]["backend"] == "hf"
    assert all(c["target_device"] == spelled for c in [*mblt.values(), *mxq.values()])
    assert {c["device"] for c in mxq.values()} == {"cuda" if version < "1.1" else "gpu"}
    schemes = ("single", "single") if target == "regulus-rb" else ("global4", None)
    assert (mxq["encoder"]["inference_scheme"], mxq["decoder"]["inference_scheme"]) == schemes
    assert mxq["encoder"]["llm_config"] is None
    assert mxq["decoder"]["llm_config"] == TUTORIAL_LLM.get(version, NEW_LLM)
    assert len(mxq["encoder"]["calibration_files"]) == 24 and len(mxq["decoder"]["calibration_files"]) == 48
    mxq_log = (work / f"logs/mxq/{MODEL}_decoder.log").read_text()
    assert "input shapes [(1, -1, 64), (1, 1500, 64)]" in mxq_log


# Mobilint's compilation/stt/compile_config.py, transcribed value by value.
MOBILINT_ET = {
    "class": "EquivalentTransformationConfig",
    "norm_conv": {"apply": True, "learn": True},
    "qk": {"apply": True},
    "ud": {"apply": True, "learn": True},
    "vo": {"apply": True},
    "feed_forward_multi_lut": {"apply": True},
    "spin_r2": {"apply": True, "learn": True},
    "qk_rotation": {"apply": True},
    "flatten_quant": {"apply": True, "learn": True},
    "optimize_ffn": {"apply": True, "ch_per_ffn": -1},
}
MOBILINT_BITS = {"class": "BitConfig", "transformer": {"mixed_precision": {"activation": {"apply": True}}}}
MOBILINT_HESSIAN = {
    "class": "HessianQuantConfig",
    "apply": True,
    "attributes": {"act_order": True, "block_size": 128, "perc_damp": 0.01},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "target, scheme, lengths",
    [
        ("aries-rb", "all", {}),
        ("regulus-rb", "single", {"max_sequence_length": 1024, "max_cache_length": 1024}),
    ],
)
def test_mobilint_recipe_matches_mobilint_compile_config(demo_run, tmp_path, target, scheme, lengths):
    work = copy_run(demo_run, tmp_path / "run")
    _, calls = compile_demo(work, "1.3.0", {"device": "cuda", "recipe": "mobilint-1.3", "target_device": target})
    mblt, mxq = by_part(calls, "mblt_compile"), by_part(calls, "mxq_compile")
    assert {c["target_device"] for c in [*mblt.values(), *mxq.values()]} == {target}
    assert mblt["decoder"]["model_part_options"] == {"last_token_only": True}
    assert mblt["decoder"]["dynamic_axes"] == {"inputs_embeds": [1], "cache_position": [0]}
    configs = {k: v for k, v in mxq["encoder"].items() if k.endswith("_config") and v is not None}
    assert configs == {"equivalent_transformation_config": MOBILINT_ET, "bit_config": MOBILINT_BITS}
    configs = {k: v for k, v in mxq["decoder"].items() if k.endswith("_config") and v is not None}
    assert configs == {
        "calibration_config": {"class": "CalibrationConfig", "output": 0, "mode": 0},
        "equivalent_transformation_config": MOBILINT_ET,
        "llm_config": {
            "class": "LlmConfig",
            "apply": True,
            "attributes": {**lengths, "calibration": {"use_full_seq_length": True}},
        },
        "bit_config": MOBILINT_BITS,
        "hessian_quant_config": MOBILINT_HESSIAN,
    }
    assert {c["inference_scheme"] for c in mxq.values()} == {scheme}
    assert {c["device"] for c in mxq.values()} == {"gpu"}


@pytest.mark.slow
def test_config_objects_override_the_recipe(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    cfg = {
        "device": "cpu",
        "recipe": "mobilint-1.3",
        "decoder": {"configs": {"hessian_quant_config": None, "bit_config": {"transformer": {"weight": {"ffn": 4}}}}},
    }
    _, calls = compile_demo(work, "1.3.0", cfg)
    dec = by_part(calls, "mxq_compile")["decoder"]
    assert "hessian_quant_config" not in dec  # dropped: not passed at all
    assert dec["bit_config"]["transformer"] == {
        "mixed_precision": {"activation": {"apply": True}},
        "weight": {"ffn": 4},
    }


# --- the binary's inputs against the calibration --------------------------------------------------
@pytest.mark.slow
def test_mxq_whose_inputs_disagree_with_the_calibration_fails(demo_run, tmp_path):
    work = copy_run(demo_run, tmp_path / "run")
    before = (work / MXQS[0]).read_bytes()
    proc, _ = compile_demo(
        work, "1.0.1", {"device": "cpu"}, check=False, QBCOMPILER_DOUBLE_MXQ_INPUTS=json.dumps([[1, 3000, 128]])
    )
    assert proc.returncode != 0
    log = (work / f"logs/mxq/{MODEL}_encoder.log").read_text()
    assert "MxqInputMismatch" in log and "(1, 3000, 128)" in log and "(1, 3000, 80)" in log
    assert not (work / MXQS[0]).exists() or (work / MXQS[0]).read_bytes() == before
    assert not list((work / "compiled").glob(".*.mxq*"))


@pytest.mark.slow
def test_mxq_check_is_skipped_and_said_so_without_qbruntime(demo_run):
    for part in ("encoder", "decoder"):
        log = (demo_run / f"logs/mxq/{MODEL}_{part}.log").read_text()
        assert "qbruntime is not installed (pip install mobilint-qb-runtime)" in log


def test_shape_rule_follows_qbruntime():
    from whisper_mxq.mxq_check import accepts, matches

    assert accepts((1, 3000, 80), (1, 3000, 80)) and accepts((1, -1, 64), (1, 1, 17, 64))
    assert not accepts((1, 3000, 80), (1, 3000, 128)) and not accepts((1, 1500, 64), (1, 1499, 64))
    declared = [(1, -1, 64), (1, 1500, 64)]
    sample = [(1, 17, 64), (1, 1500, 64)]
    assert matches([(1, -1, 64), (1, 1500, 64)], declared, sample)
    assert not matches([(1, 17, 64), (1, 1500, 64)], declared, sample)  # a fixed token axis
    assert not matches([(1, -1, 64)], declared, sample)


# --- settings refused before any job ---------------------------------------------------------------
def dry_run(tmp_path, compile_cfg: dict, version: str | None = None, **top):
    env = double_env(version) if version else offline_env(double=False)
    over = config_file(tmp_path, compile=compile_cfg, **top)
    return snakemake(tmp_path, "-n", "-j1", "--configfile", str(OFFLINE), over, env=env, check=False)


@pytest.mark.parametrize(
    "compile_cfg, key",
    [
        (
            {"target_device": "regulus-rb", "encoder": {"inference_scheme": "global4"}},
            "compile.encoder.inference_scheme",
        ),
        (
            {
                "target_device": "regulus-rb",
                "decoder": {"configs": {"llm_config": {"attributes": {"max_cache_length": 2048}}}},
            },
            "compile.decoder.configs.llm_config.attributes.max_cache_length",
        ),
        (
            {"decoder": {"configs": {"llm_config": {"attributes": {"max_sequence_length": 100}}}}, "model": "x"},
            "compile.decoder.configs.llm_config.attributes.max_sequence_length",
        ),
    ],
)
def test_board_limits_fail_before_any_job(tmp_path, compile_cfg, key):
    from whisper_mxq import demo

    model = tmp_path / "whisper-x"
    if compile_cfg.get("model"):  # a local model: its positions are known before any job
        demo.build_tiny_model(model, d_model=32)
        assert json.loads((model / "config.json").read_text())["max_target_positions"] == 448
    top = {"model": str(model)} if compile_cfg.pop("model", None) else {}
    proc = dry_run(tmp_path, compile_cfg, None, **top)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"config key {key!r}" in out, out[-2000:]
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    "version, compile_cfg, key, words",
    [
        (
            "1.3.0",
            {"decoder": {"configs": {"bit_config": {"transformer": {"mixed_precision": {"activaton": {}}}}}}},
            "compile.decoder.configs.bit_config.transformer.mixed_precision",
            "activaton",
        ),
        (
            "1.3.0",
            {"encoder": {"configs": {"optq_config": {"apply": True}}}},
            "compile.encoder.configs.optq_config",
            "OptqConfig",
        ),
        (
            "1.0.1",
            {"decoder": {"configs": {"bit_config": {}}}},
            "compile.decoder.configs.bit_config",
            "no qbcompiler.configs",
        ),
        ("1.2.0", {"recipe": "mobilint-1.3"}, "compile.recipe", "1.3 or later"),
        ("1.0.1", {"target_device": "regulus-rb"}, "compile.target_device", "ARIES only"),
    ],
)
def test_config_objects_checked_against_installed_qbcompiler_before_any_job(tmp_path, version, compile_cfg, key, words):
    start = time.monotonic()
    proc = dry_run(tmp_path, compile_cfg, version)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"config key {key!r}" in out and words in out, out[-2000:]
    assert time.monotonic() - start < 60
    # the same settings pass where no qbcompiler can be asked (the preflight stops a real run)
    assert dry_run(tmp_path, compile_cfg, None).returncode == 0


def test_schema_refuses_what_it_can(tmp_path):
    for cfg, words in [
        ({"recipe": "mobilint-9"}, "mobilint-9"),
        ({"target_device": "regulus2"}, "regulus2"),
        ({"encoder": {"inference_scheme": "global2"}}, "global2"),
        ({"decoder": {"configs": {"BitConfig": {}}}}, "BitConfig"),
    ]:
        proc = dry_run(tmp_path, cfg)
        assert proc.returncode != 0 and words in proc.stdout + proc.stderr


def test_recipes_resolve_per_board():
    tutorial = recipes.plans({})
    assert (tutorial["encoder"].scheme, tutorial["decoder"].scheme) == ("global4", None)
    regulus = recipes.plans({"target_device": "regulus-rb"})
    assert {p.scheme for p in regulus.values()} == {"single"}
    assert recipes.plans({"decoder": {"full_seq_length_calibration": False}})["decoder"].configs == {}
    chosen = recipes.plans({"recipe": "mobilint-1.3", "encoder": {"inference_scheme": "global8"}})
    assert chosen["encoder"].scheme == "global8" and chosen["decoder"].scheme == "all"
    p = recipes.plans({"recipe": "mobilint-1.3", "target_device": "regulus-rb"})["decoder"]
    with pytest.raises(recipes.ConfigError, match="'model'"):
        recipes.check_positions(p, 1500, "max_target_positions")
    recipes.check_positions(p, 448, "max_target_positions")


def test_a_listed_file_gone_stops_the_compile_before_qbcompiler(demo_run, tmp_path):
    """A per-sample file deleted after its job ran: the .mxq job names it and the fix
    instead of handing qbcompiler a list it cannot read."""
    work = copy_run(demo_run, tmp_path / "run")
    env = double_env("1.0.1", QBCOMPILER_DOUBLE_LOG=str(tmp_path / "calls.jsonl"))
    snakemake(work, "-j2", "--forcerun", "encoder_list", "--configfile", str(OFFLINE), env=env)  # this copy's paths
    (work / "calibration/encoder/encoder_calib_de_de_0001.npy").unlink()
    env = double_env("1.0.1", QBCOMPILER_DOUBLE_LOG=str(tmp_path / "calls_after.jsonl"))
    proc = snakemake(
        work,
        f"compiled/{MODEL}_encoder.mxq",
        "-j1",
        "--forcerun",
        "mxq",
        "--configfile",
        str(OFFLINE),
        env=env,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "encoder_calib_de_de_0001.npy" in out and "snakemake calibration" in out
    calls = read_calls(tmp_path / "calls_after.jsonl")
    assert not [c for c in calls if c["call"] == "mxq_compile"]
