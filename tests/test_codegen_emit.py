"""Generated text without compiling: registries, determinism, layout, pragmas, golden files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from _codegen_cases import tiny_config

from vitaccel import emit
from vitaccel.codegen import RENDER
from vitaccel.codegen._names import c_identifier, unique_identifiers
from vitaccel.codegen._variants import GELU_RENDER, LAYERNORM_RENDER, SOFTMAX_RENDER
from vitaccel.errors import UsageError
from vitaccel.hw import load_hw_config, with_knob
from vitaccel.ir import OPS

GOLDEN = Path(__file__).parent / "golden" / "codegen_tiny"
GOLDEN_FILES = ("kernel.cpp", "kernel.h", "types.h", "tables.h", "vitaccel_ops.h",
                "testbench.cpp", "Makefile", "hls_config.cfg", "run_hls.tcl", "README.md",
                "weights_layout.json")


def _numpy_weights(model) -> None:
    """Deterministic weights independent of torch's generator."""
    import torch

    rng = np.random.default_rng(7)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.normal(0.0, 0.3, size=tuple(p.shape))))


def _tiny_graph(hw, precision="edge-moe", **changes):
    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models import build_model

    model = build_model(tiny_config(**changes)).eval()
    _numpy_weights(model)
    return build_graph(model, precision, numerics=Numerics.from_hw(hw))


@pytest.fixture(scope="module")
def hw():
    return load_hw_config("kv260_default")


@pytest.fixture(scope="module")
def tiny(hw):
    graph = _tiny_graph(hw)
    images = np.random.default_rng(3).integers(0, 256, size=(2, 3, 6, 6)) / 256.0
    return graph, emit(graph, hw, images=images)


def test_every_op_kind_has_a_renderer():
    assert sorted(OPS) == sorted(RENDER)


def test_every_unit_variant_has_a_template():
    from vitaccel.units import variant_registries

    renderers = {"softmax": SOFTMAX_RENDER, "gelu": GELU_RENDER, "layernorm": LAYERNORM_RENDER}
    for kind, registry in variant_registries().items():
        assert sorted(registry) == sorted(renderers[kind]), kind


def test_emit_is_deterministic(tiny, hw):
    graph, files = tiny
    images = np.random.default_rng(3).integers(0, 256, size=(2, 3, 6, 6)) / 256.0
    assert emit(graph, hw, images=images) == files


def test_golden_text(tiny):
    """Emitted text of one small model; regenerate on purpose with VITACCEL_REGEN_GOLDEN=1."""
    _, files = tiny
    if os.environ.get("VITACCEL_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in GOLDEN_FILES:
            (GOLDEN / name).write_text(files[name], encoding="utf-8")
    for name in GOLDEN_FILES:
        expected = (GOLDEN / name).read_text(encoding="utf-8")
        assert files[name] == expected, f"{name} differs from tests/golden (regenerate?)"


def test_one_typedef_per_node_output(tiny):
    graph, files = tiny
    types = files["types.h"]
    ids = unique_identifiers([n.name for n in graph])
    for node in graph:
        assert f"typedef {node.fmt.c_type} {ids[node.name]}_out_t;" in types
    assert "typedef ap_fixed<32,10> blocks_0_attn_qkv_out_t;" in types
    assert f"typedef {graph.input_fmt.c_type} input_t;" in types


def test_weights_bin_holds_every_parameter_in_its_documented_layout(tiny):
    graph, files = tiny
    layout = json.loads(files["weights_layout.json"])
    words = np.frombuffer(files["weights.bin"], dtype="<u8")
    assert layout["words"] == words.size
    seen = 0
    for entry in layout["tensors"]:
        param = graph[entry["owner"]].params[entry["key"]]
        lane, width = entry["lane"], param.fmt.width
        idx = np.arange(entry["count"])
        word = words[entry["offset"] + idx // (64 // lane)].astype(object)
        bits = [(int(w) >> int(lane * (i % (64 // lane)))) & ((1 << width) - 1)
                for w, i in zip(word, idx, strict=True)]
        codes = [b - (1 << width) if param.fmt.signed and b >> (width - 1) else b for b in bits]
        np.testing.assert_array_equal(np.array(codes, dtype=np.int64), param.raw.reshape(-1))
        seen += 1
    expected = sum(1 for n in graph for k in n.params if k != "mean_scale")
    assert seen == expected


def test_roms_are_the_simulators_tables(tiny):
    graph, files = tiny
    roms = dict(re.findall(r"static const ap_u?int<\d+> (ROM_\w+)\[\d+\] = \{([^}]*)\}",
                           files["tables.h"]))
    tables = []
    for node in graph:
        for value in node.attrs.values():
            for attr in ("table", "exp_table", "recip_table", "pow2_table"):
                if hasattr(value, attr):
                    tables.append(getattr(value, attr))
    assert tables
    for table in tables:
        codes = [np.array([int(v.strip().rstrip("L")) for v in body.split(",")])
                 for body in roms.values()]
        assert any(np.array_equal(c, table.values) for c in codes), table.name


def test_pragmas_and_scripts_follow_the_hardware_config(hw):
    knobbed = with_knob(with_knob(with_knob(hw, "linear.tile_in", 4), "linear.pipeline_ii", 2),
                        "clock_mhz", 200.0)
    files = emit(_tiny_graph(knobbed), knobbed)
    kernel = files["kernel.cpp"]
    assert "#pragma HLS PIPELINE II=2" in kernel
    assert "#pragma HLS ARRAY_PARTITION variable=w cyclic factor=4 dim=2" in kernel
    assert "#pragma HLS ARRAY_PARTITION variable=w cyclic factor=10 dim=1" in kernel
    assert "#pragma HLS INTERFACE m_axi port=weights offset=slave bundle=gmem_weights" in kernel
    assert "#pragma HLS INTERFACE s_axilite port=return bundle=control" in kernel
    assert "#pragma HLS DATAFLOW" in kernel and "LOOP_TRIPCOUNT" in kernel
    assert 'extern "C" void vitaccel_top(' in kernel
    assert f"part={hw.board.part}" in files["hls_config.cfg"]
    assert "clock=5.000ns" in files["hls_config.cfg"]
    assert "create_clock -period 5.000" in files["run_hls.tcl"]
    assert f"set_part {{{hw.board.part}}}" in files["run_hls.tcl"]
    assert "csim:" in files["Makefile"]


def test_kernel_code_is_synthesizable_style(tiny):
    _, files = tiny
    for name in ("kernel.cpp", "types.h", "tables.h", "vitaccel_ops.h", "kernel.h"):
        text = re.sub(r"//[^\n]*", "", files[name])
        for banned in (r"\bfloat\b", r"\bdouble\b", r"\bmalloc\b", r"\bnew\b", r"std::",
                       r"#include <(vector|string|map|cmath)>", r"\bexp\s*\("):
            assert not re.search(banned, text), (name, banned)


def test_emit_without_images_has_no_test_data(hw):
    from vitaccel.codegen import csim, write_project

    files = emit(_tiny_graph(hw), hw)
    assert not any(name.startswith("data/") for name in files)
    with pytest.raises(UsageError, match="generate it with images"):
        csim(write_project(files, Path(os.environ.get("TMPDIR", "/tmp")) /
                           f"vx-nodata-{os.getpid()}", force=True))


def test_golden_without_images_is_a_usage_error(tiny, hw):
    graph, _ = tiny
    with pytest.raises(UsageError, match="golden data needs the images"):
        emit(graph, hw, golden=object())


def test_unknown_op_is_a_usage_error(tiny, hw):
    from vitaccel.ir import Node

    graph, _ = tiny
    bogus = Node("bogus", "bogus_op", (graph.nodes[-1].name,), (1,), graph.nodes[-1].fmt)
    with pytest.raises(UsageError, match="no template for op 'bogus_op'"):
        emit(graph.replace_nodes(graph.nodes + (bogus,)), hw)


@pytest.mark.parametrize(("name", "ident"), [
    ("blocks.3.attn.qkv", "blocks_3_attn_qkv"), ("3x", "n_3x"), ("class", "n_class"),
    ("_x", "n_x"), ("a--b", "a_b"), ("", "n_"),
])
def test_c_identifier(name, ident):
    assert c_identifier(name) == ident


def test_unique_identifiers_resolve_collisions():
    assert unique_identifiers(["a.b", "a_b", "a-b"]) == {"a.b": "a_b", "a_b": "a_b_2",
                                                         "a-b": "a_b_3"}
