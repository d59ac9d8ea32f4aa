"""C-simulation of generated projects: every output and layer bit equals the simulator's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _codegen_cases import CSIM_IMAGES, Case, Projects, variant_knobs

from vitaccel.codegen import csim

# The default cases (with the CLI test's ivit variants in test_codegen_project.py) cover every
# op template and every unit variant template at least once.
DENSE = Case("digits-dense-edge-moe", "digits-dense", "edge-moe")
ODD = Case(  # odd dims, no class token (mean pooling), tiles 4x3, P=3 with N=9, a MoE block,
    # a local (grid conv) exit head with the entropy rule after block 0
    "odd-mean-moe-exit-edge-moe",
    {"class_token": False, "embed_dim": 10, "num_heads": 2, "mlp_hidden": 14, "depth": 2,
     "moe": {"num_experts": 3, "expert_hidden": 7, "top_k": 2, "num_tasks": 2, "blocks": (1,)},
     "exits": {"blocks": (0,), "head": "local", "rule": "entropy", "threshold": 1.9}},
    "edge-moe", (("linear.tile_in", 4), ("linear.tile_out", 3), ("attention.parallel_queries", 3),
             ("attention.head_dim_lanes", 2)) + variant_knobs("two_pass", "lut", "isqrt"))
ONE_HEAD = Case(  # one head, distilled (two prefix tokens, cls_dist head), standard order,
    # a global (attention) exit head with the max_prob rule
    "one-head-dist-exit-w8a8",
    {"distilled": True, "embed_dim": 6, "num_heads": 1, "mlp_hidden": 9, "depth": 2,
     "exits": {"blocks": (0,), "head": "global", "rule": "max_prob", "threshold": 0.3}},
    "w8a8", (("attention.order", "standard"),) + variant_knobs("base2", "tanh", "rsqrt_table"))

INT = Case(  # integer-only I-BERT softmax and GELU, odd dims, N = 10 with P = 4, ShiftAddViT
    # shift/add linear layers, binary Q/K codes and log2 probabilities (multiplier-free)
    "int-ibert-shiftadd-w8a8",
    {"embed_dim": 9, "num_heads": 3, "mlp_hidden": 11, "shiftadd": {"p_min": -8, "p_max": 0}},
    "w8a8", variant_knobs("ibert", "ibert", "isqrt"),
    numerics=(("qk_kernel", "binary"), ("av_kernel", "log2")))


@pytest.fixture(scope="session")
def projects(tmp_path_factory) -> Projects:
    return Projects(tmp_path_factory.mktemp("codegen"))


def _assert_exact(result) -> None:
    assert result.passed, f"{result.mismatch}\n{result.log[-3000:]}"
    assert result.images == result.exact == CSIM_IMAGES
    assert result.warnings == ()  # no compiler warning located in a generated file


def test_dense_digits_bit_exact_O2_without_warnings(projects):
    _, result = projects.csim(DENSE, optimize="-O2", extra_flags=("-Wextra",))
    _assert_exact(result)
    assert result.warnings == ()


@pytest.mark.parametrize("case", [ODD, ONE_HEAD, INT], ids=lambda c: c.name)
def test_small_random_shapes_bit_exact(projects, case):
    _assert_exact(projects.csim(case)[1])


def test_embedded_weights_bit_exact(projects):
    case = Case("embedded-weights", {"embed_dim": 4, "num_heads": 1, "mlp_hidden": 5},
                "edge-moe", embed_weights=True)
    out, result = projects.csim(case)
    _assert_exact(result)
    kernel = (out / "kernel.cpp").read_text()
    assert '#include "weights_rom.h"' in kernel and "port=weights" not in kernel


def test_tampered_golden_layer_is_reported_and_fails(projects, tmp_path):
    import subprocess

    out, result = projects.csim(DENSE, optimize="-O2", extra_flags=("-Wextra",))
    _assert_exact(result)
    copy = tmp_path / "tampered"
    shutil.copytree(out, copy)
    layers = np.fromfile(copy / "data" / "golden_layers.bin", dtype="<i8")
    per_image = layers.size // CSIM_IMAGES
    target = per_image + 700  # second image, inside an early layer
    layers[target] += 1
    layers.tofile(copy / "data" / "golden_layers.bin")
    run = subprocess.run([str(out / "build" / "csim"), str(copy)], capture_output=True,
                         text=True)
    assert run.returncode == 1
    assert "first layer mismatch: image 1, layer" in run.stdout
    assert f"bit-exact: {CSIM_IMAGES}/{CSIM_IMAGES} images" in run.stdout  # outputs still equal


def test_tampered_golden_output_fails_csim(projects, tmp_path):
    out, _ = projects.csim(ONE_HEAD)
    copy = tmp_path / "bad"
    shutil.copytree(out, copy)
    outputs = np.fromfile(copy / "data" / "golden_outputs.bin", dtype="<i8")
    outputs[-1] ^= 1
    outputs.tofile(copy / "data" / "golden_outputs.bin")
    result = csim(copy, optimize="-O0")  # the copied binary is up to date: no recompile
    assert result.compile_s == 0.0
    assert not result.passed
    assert result.exact == CSIM_IMAGES - 1
    assert "first output mismatch: image 2" in result.log


PRESETS = ("edge-moe", "w16a16", "w8a8")
VARIANTS = [("online", "delta_table", "rsqrt_table"), ("two_pass", "lut", "isqrt"),
            ("base2", "tanh", "ivit"), ("ibert", "ibert", "rsqrt_table"),
            ("ivit", "ivit", "isqrt"), ("online", "ivit", "ivit"), ("base2", "ibert", "isqrt")]


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRESETS)
@pytest.mark.parametrize("variants", VARIANTS, ids="-".join)
@pytest.mark.parametrize("order", ["standard", "reordered"])
def test_variant_preset_matrix_bit_exact(projects, precision, variants, order):
    case = Case(f"m-{precision}-{'-'.join(variants)}-{order}", "digits-dense", precision,
                (("attention.order", order),) + variant_knobs(*variants))
    _assert_exact(projects.csim(case)[1])


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRESETS)
@pytest.mark.parametrize("model", ["digits-dense", "digits-moe", "digits-early-exit",
                                   "digits-shiftadd"])
def test_trained_digits_models_bit_exact(projects, model, precision):
    numerics = ((("qk_kernel", "binary"), ("av_kernel", "log2")) if model == "digits-shiftadd"
                else ())
    case = Case(f"trained-{model}-{precision}", model, precision, trained=True,
                numerics=numerics)
    _assert_exact(projects.csim(case)[1])
