"""Linear engine: the tiled loop nest of the hardware == the simulator's unit, for any tiling."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.fixed import FixedType, fixed_add, mul_type
from vitaccel.ir import Node, Param
from vitaccel.units import linear

FORMATS = ["ap_fixed<12,4>", "ap_fixed<10,3,AP_RND,AP_SAT>", "ap_fixed<16,6,AP_RND_CONV>",
           "ap_fixed<8,2,AP_TRN_ZERO,AP_SAT_SYM>", "ap_fixed<20,8>"]


def tiled_oracle(x, x_t, node, tile_in, tile_out, residual=None, res_t=None):
    """Scalar loop nest in the order a tiled engine runs: output tiles, input tiles, then the
    elements of a tile; each accumulator sees its products in k order, cast after every add."""
    w, b = node.params["weight"], node.params["bias"]
    acc_t, prod_t = node.attrs["acc_t"], node.attrs["product_t"]
    rows, k_len = x.shape
    n_out = w.shape[0]
    out = np.zeros((rows, n_out), dtype=np.int64)
    for r in range(rows):
        acc = {n: int(acc_t.cast(np.array([b.raw[n]]), b.fmt)[0]) for n in range(n_out)}
        for n0 in range(0, n_out, tile_out):
            for k0 in range(0, k_len, tile_in):
                for n in range(n0, min(n0 + tile_out, n_out)):
                    for k in range(k0, min(k0 + tile_in, k_len)):
                        p = np.array([int(x[r, k]) * int(w.raw[n, k])])
                        p_t = mul_type(x_t, w.fmt)
                        if prod_t is not None:
                            p, p_t = prod_t.cast(p, p_t), prod_t
                        s, s_t = fixed_add(np.array([acc[n]]), acc_t, p, p_t)
                        acc[n] = int(acc_t.cast(s, s_t)[0])
        y = node.fmt.cast(np.array([acc[n] for n in range(n_out)]), acc_t)
        if residual is not None:
            s, s_t = fixed_add(y, node.fmt, residual[r], res_t)
            y = node.fmt.cast(s, s_t)
        out[r] = y
    return out


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    dims=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 7)),
    tiles=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    fmts=st.tuples(*(st.sampled_from(FORMATS) for _ in range(4))),
    product=st.sampled_from([None, "ap_fixed<14,5>", "ap_fixed<9,3,AP_RND,AP_SAT>"]),
    residual=st.booleans(),
)
def test_linear_unit_equals_tiled_loop_nest(seed, dims, tiles, fmts, product, residual):
    rows, k_len, n_out = dims
    x_t, w_t, acc_t, out_t = (FixedType.parse(f) for f in fmts)
    rng = np.random.default_rng(seed)
    w = w_t.to_float(rng.integers(w_t.min_raw, w_t.max_raw + 1, size=(n_out, k_len)))
    b = acc_t.to_float(rng.integers(acc_t.min_raw, acc_t.max_raw + 1, size=n_out))
    node = Node("fc", "linear", ("x", "r") if residual else ("x",), (rows, n_out), out_t,
                attrs={"acc_t": acc_t, "product_t": None if product is None
                       else FixedType.parse(product), "gelu": None, "residual": residual,
                       "kernel": "mac"},
                params={"weight": Param.quantize(w, w_t), "bias": Param.quantize(b, acc_t)})
    x = rng.integers(x_t.min_raw, x_t.max_raw + 1, size=(1, rows, k_len))
    res = rng.integers(out_t.min_raw, out_t.max_raw + 1, size=(1, rows, n_out))
    inputs, fmts_in = ([x, res], [x_t, out_t]) if residual else ([x], [x_t])
    got = linear.simulate(node, inputs, fmts_in, {})
    expected = tiled_oracle(x[0], x_t, node, *tiles, res[0] if residual else None, out_t)
    np.testing.assert_array_equal(got[0], expected)
