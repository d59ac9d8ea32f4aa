"""Resource rules of the cost model: multipliers by width, memories by shape, ROMs by table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.cost import dsp_per_product, multiplier
from vitaccel.cost._hwmath import LUT_MUL_BITS, PACK_BITS, memory, storage_bytes
from vitaccel.cost._variants import gelu_cost, layernorm_cost, softmax_cost, tables_of
from vitaccel.fixed import FixedType


@pytest.mark.parametrize(("a", "b", "dsp48", "dsp58"), [
    (16, 16, 1, 1), (27, 18, 1, 1), (18, 27, 1, 1), (32, 16, 2, 2), (16, 32, 2, 2),
    (27, 24, 2, 1), (28, 18, 2, 2), (32, 32, 4, 4), (48, 48, 6, 4),
])
def test_dsp_per_product_by_widths(a, b, dsp48, dsp58):
    assert dsp_per_product(a, b, "dsp48e2") == dsp48
    assert dsp_per_product(a, b, "dsp58") == dsp58


def test_small_products_go_to_luts_or_pack():
    packed = multiplier(8, 8, shared_operand=True)
    assert packed.dsp == 0.5 and packed.lut == 0  # two INT8 products per DSP48E2
    lut = multiplier(8, 8, shared_operand=False)
    assert lut.dsp == 0 and lut.lut == 8 * 8 // 2
    assert multiplier(10, 10, shared_operand=False).lut == 50
    assert multiplier(9, 9, shared_operand=True).dsp == 0  # too wide to pack, LUT-sized
    assert multiplier(11, 10, shared_operand=False).dsp == 1
    assert multiplier(16, 16, shared_operand=True).dsp == 1
    assert multiplier(32, 16, shared_operand=True).dsp == 2
    shift = multiplier(16, 8, shared_operand=True, pow2_b=True, pow2_shifts=8)
    assert shift.dsp == 0 and shift.lut == 16 * 3 + 16  # 8-way barrel shift + add


@settings(max_examples=60, deadline=None)
@given(a=st.integers(2, 64), b=st.integers(2, 64), da=st.integers(0, 16), db=st.integers(0, 16))
def test_dsps_never_decrease_with_width(a, b, da, db):
    assert dsp_per_product(a + da, b + db) >= dsp_per_product(a, b)
    assert dsp_per_product(a, b) == dsp_per_product(b, a)
    small = multiplier(a, b, shared_operand=False)
    if a <= LUT_MUL_BITS and b <= LUT_MUL_BITS:
        assert small.dsp == 0 and small.lut == math.ceil(a * b / 2)
    else:
        assert small.dsp == dsp_per_product(a, b) and small.lut == 0
    if a <= PACK_BITS and b <= PACK_BITS:
        assert multiplier(a, b, shared_operand=True).dsp == 0.5


def test_memory_shapes():
    assert memory(32, 16, 4).bram18 == 0 and memory(32, 16, 4).lut == 4 * 16  # LUTRAM
    one = memory(1024, 18)
    assert (one.bram18, one.uram, one.lut) == (1, 0, 0)
    assert memory(2048, 18).bram18 == 2
    assert memory(512, 72).bram18 == 2  # 36 bits per BRAM18 port at depth 512
    assert memory(576, 4096).bram18 == math.ceil(4096 / 18)  # Edge-MoE weight tile word
    assert memory(576, 4096, uram_available=True).uram == math.ceil(4096 / 72)
    assert memory(4096, 72, uram_available=True).uram == 1


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(65, 40000), width=st.integers(1, 128), banks=st.integers(1, 64))
def test_partitioned_buffer_uses_a_memory_per_bank(depth, width, banks):
    m = memory(depth, width, banks)
    if depth * width > 1024:
        assert m.bram18 >= banks
        assert m.bram18 * 18 * 1024 >= depth * width * banks  # capacity suffices
    assert memory(depth, width, banks + 1).bram18 >= m.bram18


def test_storage_bytes():
    assert [storage_bytes(w) for w in (1, 8, 9, 16, 17, 24, 32, 33, 64)] == \
        [1, 1, 2, 2, 4, 4, 4, 8, 8]


def test_roms_are_read_from_the_variant_objects():
    from vitaccel.units.gelu import DeltaTableGelu
    from vitaccel.units.softmax import OnlineSoftmax

    gelu = DeltaTableGelu(table_t=FixedType(22, 0, False), out_t=FixedType(32, 10))
    (rom,) = gelu_cost(gelu).roms
    assert (rom.entries, rom.width) == (177, 22)  # Edge-MoE's GELU ROM
    wide = DeltaTableGelu(table_t=FixedType(22, 0, False), out_t=FixedType(32, 10),
                          step_log2=-7)
    assert gelu_cost(wide).roms[0].entries == 4 * 176 + 1
    f = FixedType(18, 2, False)
    sm = OnlineSoftmax(exp_t=f, sum_t=FixedType(24, 10, False), recip_table_t=f,
                       recip_t=FixedType(24, 4, False), prob_t=FixedType(16, 1, False))
    cost = softmax_cost(sm)
    assert {r.name: r.entries for r in cost.roms} == {
        t.name: t.size for t in (sm.recip_table, sm.exp_table)}
    assert cost.passes == 1
    assert tables_of(sm) == cost.roms


def test_layernorm_latency_by_variant():
    from vitaccel.units.layernorm import IsqrtLayerNorm, RsqrtTableLayerNorm

    f = FixedType(32, 10)
    common = dict(mean_t=f, centered_t=f, var_t=FixedType(32, 12), rsqrt_t=FixedType(24, 8),
                  norm_t=f, out_t=f)
    table = RsqrtTableLayerNorm(**common, rsqrt_table_t=FixedType(18, 1, False))
    more = RsqrtTableLayerNorm(**common, rsqrt_table_t=FixedType(18, 1, False),
                               newton_steps=2)
    isqrt = IsqrtLayerNorm(**common, sqrt_t=FixedType(24, 12, False))
    assert layernorm_cost(more).latency_cycles > layernorm_cost(table).latency_cycles
    assert len(layernorm_cost(table).roms) == 1 and layernorm_cost(isqrt).roms == ()
    assert layernorm_cost(isqrt).latency_cycles > layernorm_cost(table).latency_cycles


@pytest.fixture(scope="module")
def small_model():
    torch = pytest.importorskip("torch")
    import dataclasses

    from vitaccel.models import build_model, get_config

    torch.manual_seed(0)
    return build_model(dataclasses.replace(get_config("digits-dense"), depth=1)).eval()


def test_linear_engine_dsps_follow_the_precision(small_model):
    import numpy as np

    from vitaccel.cost import estimate
    from vitaccel.hw import load_hw_config
    from vitaccel.ir._build import Numerics, build_graph

    hw = load_hw_config("kv260_default")
    calibration = np.random.default_rng(0).random((4, 1, 8, 8))
    dsps, widths = {}, {}
    for precision in ("w8a8", "w16a16", "edge-moe"):
        g = build_graph(small_model, precision, numerics=Numerics.from_hw(hw),
                        calibration=calibration)
        fc2 = g["blocks.0.mlp.fc2"]
        widths[precision] = (g.spec(fc2.inputs[0])[1].width, fc2.params["weight"].fmt.width)
        dsps[precision] = estimate(g, hw).node("blocks.0.mlp.fc2").resources.dsp
    assert widths == {"w8a8": (8, 8), "w16a16": (16, 16), "edge-moe": (32, 16)}
    # 16 x 16 multipliers: INT8 pairs share a DSP, 16x16 take one, 32x16 two.
    assert dsps == {"w8a8": 128, "w16a16": 256, "edge-moe": 512}


def test_weight_buffers_fill_uram_then_bram():
    from vitaccel.cost._linear import EngineWork, _engine_build

    fc1 = EngineWork(rows=197, n_in=192, n_out=768, sets=1, x_bits=16, x_width=16, w_bits=16,
                     w_width=16, bias_width=16, acc_bits=32, weight_bytes=0, act_bytes=0,
                     pow2_shifts=0, gelu=None, residual=False)
    per_buffer_uram = math.ceil(256 * 16 / 72)  # one 16x16 tile of 16-bit weights per word
    per_buffer_bram18 = math.ceil(256 * 16 / 18)  # 576 words deep fit one 1K x 18 BRAM18
    kv260 = _engine_build(fc1, 16, 16, "pingpong", "dsp48e2", 64).resources
    assert kv260.uram == per_buffer_uram  # ping in URAM, pong does not fit there any more
    assert kv260.bram18 >= per_buffer_bram18
    u280 = _engine_build(fc1, 16, 16, "pingpong", "dsp48e2", 960).resources
    assert u280.uram == 2 * per_buffer_uram and u280.bram18 < per_buffer_bram18
    zcu102 = _engine_build(fc1, 16, 16, "pingpong", "dsp48e2", 0).resources
    assert zcu102.uram == 0 and zcu102.bram18 >= 2 * per_buffer_bram18
    single = _engine_build(fc1, 16, 16, "single", "dsp48e2", 0).resources
    assert single.bram18 < zcu102.bram18
