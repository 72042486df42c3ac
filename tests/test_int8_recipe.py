"""The `default` INT8 recipe against `naive` on OpenAI's trained tiny.en and held-out
human speech, plus the recipe's decisions on a small graph built here."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from realmodel import onnx_harness as H
from realmodel.fixtures import realmodel, realmodel_clips, realmodel_dir, realmodel_onnx  # noqa: F401

from whisper_mxq import int8_recipe

N_CALIBRATION, N_EVAL = 6, 4  # CPU budget: quantizing the encoder costs ~1 s per feed and pass


@pytest.fixture(scope="module")
def quantized(realmodel, realmodel_clips, realmodel_onnx, tmp_path_factory):
    """Both recipes, both parts, calibrated on the same validation clips."""
    calibration, _ = realmodel_clips
    calibration = calibration[:: max(1, len(calibration) // N_CALIBRATION)][:N_CALIBRATION]
    feeds = {"encoder": H.encoder_feeds(calibration), "decoder": H.decoder_feeds(realmodel, calibration)}
    work = tmp_path_factory.mktemp("int8")
    out, described = {}, {}
    for recipe in int8_recipe.RECIPES:
        for part in ("encoder", "decoder"):
            path = work / f"{part}.{recipe}.onnx"
            described[recipe, part] = int8_recipe.quantize(
                str(realmodel_onnx[part]), str(path), H.reader(feeds[part]), recipe
            )
            out[recipe, part] = path
    return out, described


def _activation_matmuls(path) -> set[str]:
    """MatMuls of two run-time tensors, found here from the graph itself."""
    graph = onnx.load(str(path)).graph
    constants = {t.name for t in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output
    }
    return {n.name for n in graph.node if n.op_type == "MatMul" and not set(n.input) & constants}


def test_default_beats_naive_on_held_out_speech(realmodel, realmodel_clips, realmodel_onnx, quantized):
    paths, _ = quantized
    _, held_out = realmodel_clips
    clips = held_out[:N_EVAL]
    fp32 = H.Pair(realmodel, realmodel_onnx["encoder"], realmodel_onnx["decoder"])
    fp32_texts = [realmodel.text(fp32.greedy(c.states, 48)) for c in clips]
    scores = {}
    for recipe in int8_recipe.RECIPES:
        pair = H.Pair(realmodel, paths[recipe, "encoder"], paths[recipe, "decoder"])
        states = [pair.encode(c.features) for c in clips]
        agree = [np.mean(pair.choices(c.tokens, s) == fp32.choices(c.tokens, c.states)) for c, s in zip(clips, states)]
        texts = [realmodel.text(pair.greedy(s, 48)) for s in states]
        scores[recipe] = {
            "sqnr": np.mean([H.sqnr_db(c.states, s) for c, s in zip(clips, states)]),
            "agreement": float(np.mean(agree)),
            "wer_vs_fp32": H.wer(fp32_texts, texts),
        }
    naive, default = scores["naive"], scores["default"]
    assert default["sqnr"] >= 20, scores  # the goal; naive measured ~3 dB, default ~23 dB
    assert default["sqnr"] > naive["sqnr"] + 10, scores
    # the whole INT8 pair, teacher-forced on the reference tokens, against FP32's choices
    assert default["agreement"] > naive["agreement"] and default["agreement"] >= 0.9, scores
    assert default["wer_vs_fp32"] < naive["wer_vs_fp32"] and default["wer_vs_fp32"] <= 0.2, scores


def test_description_says_which_node_got_which_precision(realmodel_onnx, quantized):
    _, described = quantized
    for part in ("encoder", "decoder"):
        naive, default = described["naive", part], described["default", part]
        attention = _activation_matmuls(realmodel_onnx[part])
        assert attention and set(naive["nodes"]) == set(default["nodes"]) >= attention
        assert set(naive["nodes"].values()) == {"int8"} and naive["per_channel"] is False
        assert default["per_channel"] is True
        assert all(default["nodes"][n] == "int16" for n in attention)
        for name, detail in default["node_details"].items():
            assert (detail["precision"] == "int8") == (detail["reason"] is None), name
        counts = default["coverage"]
        assert counts["int8_nodes"] == sum(p == "int8" for p in default["nodes"].values())
        assert 0 < counts["int8_flops_share"] < 1 == naive["coverage"]["int8_flops_share"]
        # the statistics behind each 16-bit input are in the description
        for tensor, stats in default["tensors"].items():
            if (
                stats["type"] == "QInt16"
                and stats["int8_bulk_sqnr_db"] < default["thresholds"]["min_int8_bulk_sqnr_db"]
            ):
                assert any(
                    tensor in d["activations"] and d["precision"] != "int8" for d in default["node_details"].values()
                )


def test_node_sensitivity_matches_a_hand_computed_first_node(realmodel_clips, realmodel_onnx, quantized):
    """conv1 sees only its own quantization: recompute its INT8 output from the scales and
    quantized weights stored in the INT8 graph, with torch's conv1d."""
    import torch

    paths, _ = quantized
    _, held_out = realmodel_clips
    feeds = H.encoder_feeds(held_out[:1])
    rows = int8_recipe.node_sensitivity(str(realmodel_onnx["encoder"]), str(paths["default", "encoder"]), feeds)
    assert len(rows) == len(int8_recipe.compute_nodes(onnx.load(str(realmodel_onnx["encoder"]))))
    first = rows[0]
    assert first["op_type"] == "Conv" and first["quantized"]
    graph = onnx.load(str(paths["default", "encoder"])).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    conv = next(n for n in graph.node if n.name == first["node"])

    def dequantized(name: str) -> np.ndarray:
        dq = producer[name]
        scale, zero = init[dq.input[1]], init[dq.input[2]].astype(np.float64)
        if dq.input[0] in init:  # weights: stored quantized, per output channel
            q = init[dq.input[0]].astype(np.float64)
            shape = (-1,) + (1,) * (q.ndim - 1)
            return (q - zero.reshape(shape)) * scale.reshape(shape)
        x = feeds[0]["input_features"].transpose(0, 2, 1).astype(np.float64)  # the conv's input
        info = np.iinfo(init[dq.input[2]].dtype)
        return (np.clip(np.round(x / scale) + zero, info.min, info.max) - zero) * scale

    x, w = dequantized(conv.input[0]), dequantized(conv.input[1])
    bias = torch.from_numpy(dequantized(conv.input[2]) if conv.input[2] in producer else init[conv.input[2]])
    ours = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(w), bias.double(), padding=1).numpy()
    xf = feeds[0]["input_features"].transpose(0, 2, 1).astype(np.float64)
    fp32 = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(realmodel_onnx["encoder"])).graph.initializer}
    ref = torch.nn.functional.conv1d(
        torch.from_numpy(xf),
        torch.from_numpy(fp32["encoder.conv1.weight"].astype(np.float64)),
        torch.from_numpy(fp32["encoder.conv1.bias"].astype(np.float64)),
        padding=1,
    ).numpy()
    assert abs(H.sqnr_db(ref, ours) - first["sqnr_db"]) < 0.5


def _two_matmuls(path, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """x -> MatMul(W1) -> h; h * gain -> MatMul(W2) -> y, where `gain` makes one value of
    the second input (one position, one channel, as Whisper's massive activations) 300x
    the rest. Names say nothing about either role."""
    rng = np.random.default_rng(seed)
    gain = np.ones((1, 50, 64), np.float32)
    gain[0, 7, 3] = 300.0
    inits = [
        numpy_helper.from_array(rng.standard_normal((32, 64)).astype(np.float32) / 8, "a"),
        numpy_helper.from_array(rng.standard_normal((64, 16)).astype(np.float32) / 8, "b"),
        numpy_helper.from_array(gain, "g"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "a"], ["h"], name="node_p"),
        helper.make_node("Mul", ["h", "g"], ["hg"], name="scale"),
        helper.make_node("MatMul", ["hg", "b"], ["y"], name="node_q"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 50, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 50, 16])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return [{"x": rng.standard_normal((1, 50, 32)).astype(np.float32)} for _ in range(4)]


def test_outlier_inputs_are_found_from_calibration_data(tmp_path):
    feeds = _two_matmuls(tmp_path / "m.onnx")
    described = int8_recipe.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), H.reader(feeds))
    assert described["nodes"] == {"node_p": "int8", "node_q": "int16"}
    assert "dB" in described["node_details"]["node_q"]["reason"]
    assert described["tensors"]["hg"]["int8_bulk_sqnr_db"] < described["thresholds"]["min_int8_bulk_sqnr_db"]
    assert described["tensors"]["x"]["int8_bulk_sqnr_db"] > described["thresholds"]["min_int8_bulk_sqnr_db"]
    naive = int8_recipe.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "n.onnx"), H.reader(feeds), "naive")
    ref = H.session(tmp_path / "m.onnx")
    sqnr = {
        name: np.mean([H.sqnr_db(ref.run(None, f)[0], H.session(tmp_path / name).run(None, f)[0]) for f in feeds])
        for name in ("q.onnx", "n.onnx")
    }
    assert sqnr["q.onnx"] > sqnr["n.onnx"] + 10, (sqnr, naive["nodes"])


def test_unknown_recipe_and_method_are_refused(tmp_path):
    feeds = _two_matmuls(tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="recipe"):
        int8_recipe.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), H.reader(feeds), "fancy")
    with pytest.raises(ValueError, match="method"):
        int8_recipe.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), H.reader(feeds), method="mse")
