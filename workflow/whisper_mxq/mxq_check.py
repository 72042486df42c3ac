"""After a compile, open the .mxq as the NPU runtime will and check its inputs.

`qbruntime.Model(path)` (PyPI: mobilint-qb-runtime) parses an .mxq without an NPU card.
Its input shapes must take the calibration's arrays: a binary parsed from another model
(other mel bins, width or encoder length) would load on the board and fail on the first
call, or worse. Where qbruntime is not installed the check is skipped and the log says
so; the compile itself does not need it.
"""

from __future__ import annotations

import logging

import numpy as np

from . import atomic

log = logging.getLogger(__name__)
NOT_INSTALLED = (
    "qbruntime is not installed (pip install mobilint-qb-runtime): the input shapes of "
    "{mxq} were not checked against the calibration's"
)


class MxqInputMismatch(RuntimeError):
    pass


def npy_shape(path: str) -> tuple[int, ...]:
    """An .npy file's shape, reading its header only (the data is mapped, not read)."""
    return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)


def calibration_shapes(calib_path: str, part: str) -> tuple[list[tuple], list[tuple]]:
    """(declared, first sample's) input shapes of a part's calibration; the decoder's
    JSON declares the token axis as -1, the encoder's list declares nothing."""
    if part == "encoder":
        from .encoder_calibration import read_encoder_list

        sample = [npy_shape(read_encoder_list(calib_path)[0])]
        return sample, sample
    calib = atomic.read_json(calib_path)
    declared = [tuple(s) for s in calib["info"]["input shapes"]]
    return declared, [npy_shape(p) for p in calib["calib paths"][0]]


def accepts(model_shape, array_shape) -> bool:
    """qbruntime's rule for an input: the array is the model's (h, w, c), optionally with a
    leading batch axis; a negative model dimension is variable (multiples of its size)."""
    model_shape, array_shape = tuple(model_shape), tuple(array_shape)
    if len(array_shape) == len(model_shape) + 1:
        array_shape = array_shape[1:]
    if len(array_shape) != len(model_shape):
        return False
    return all(a % m == 0 if m < 0 else a == m for a, m in zip(array_shape, model_shape))


def matches(model_shapes: list, declared: list, sample: list) -> bool:
    if not (len(model_shapes) == len(declared) == len(sample)):
        return False
    for m, d, s in zip(model_shapes, declared, sample):
        variable_ok = all(mm < 0 for mm, dd in zip(m[-len(d) :], d) if dd < 0)
        if not (variable_ok and accepts(m, s)):
            return False
    return True


def check_inputs(mxq_path: str, calib_path: str, part: str) -> list[tuple] | None:
    """The .mxq's input shapes, checked against the calibration's; MxqInputMismatch when
    they disagree, None (and a log line) where qbruntime is not installed."""
    try:
        import qbruntime
    except ImportError:
        log.warning(NOT_INSTALLED.format(mxq=mxq_path))
        return None
    model = qbruntime.Model(str(mxq_path))
    got = [tuple(int(d) for d in s) for s in model.get_model_input_shape()]
    declared, sample = calibration_shapes(calib_path, part)
    log.info(
        "qbruntime %s: %s %s input shapes %s; calibration declares %s, first sample %s",
        getattr(qbruntime, "__version__", "?"),
        part,
        mxq_path,
        got,
        declared,
        sample,
    )
    if not matches(got, declared, sample):
        raise MxqInputMismatch(
            f"{mxq_path}: the compiled {part} takes inputs {got}, but its calibration "
            f"({calib_path}) has {sample} (declared {declared})"
        )
    return got
