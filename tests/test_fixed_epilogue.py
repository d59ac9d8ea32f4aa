"""The fused write-back of a linear product equals its unfused definition on every path."""

from __future__ import annotations

import numpy as np
import pytest
from _fixed_oracle import formats
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fixed_matmul import matmul_case

from vitaccel.errors import UsageError
from vitaccel.fixed import (
    Epilogue,
    FixedType,
    Overflow,
    Rounding,
    add_type,
    fixed_add,
    fixed_matmul,
)
from vitaccel.fixed._matmul import legal_paths
from vitaccel.fixed._specialise import SPECIALISE_MIN


def _paths(x, x_t, w, w_t, acc_t, product_t, bias, bias_t) -> list[str]:
    acc0 = (0, 0)
    if bias is not None:
        cast = acc_t.cast(bias, bias_t)
        acc0 = (int(cast.min()), int(cast.max()))
    x_r = (int(x.min()), int(x.max())) if x.size else (0, 0)
    w_r = (int(w.min()), int(w.max())) if w.size else (0, 0)
    return list(legal_paths(x_r, w_r, acc0, w.shape[0], x_t, w_t, acc_t, product_t, True))


def unfused(acc, acc_t, out_t, res, res_t):
    """``out_t(acc)``, then ``out_t(y + res)``: the assignments of the core, one at a time."""
    y, n_out = out_t.cast(acc, acc_t, return_overflow=True)
    counts = {"out": n_out}
    if res is not None:
        s, s_t = fixed_add(y, out_t, res, res_t)
        y, n_res = out_t.cast(s, s_t, return_overflow=True)
        if n_res:
            counts["residual"] = n_res
    return y, counts


def _check(x, x_t, w, w_t, acc_t, product_t, bias, bias_t, out_t, res, res_t, paths) -> None:
    for path in paths:
        kw = dict(acc_t=acc_t, product_t=product_t, bias_raw=bias, bias_t=bias_t, path=path,
                  return_overflow=True)
        acc, n_acc = fixed_matmul(x, x_t, w, w_t, **kw)
        want, want_counts = unfused(acc, acc_t, out_t, res, res_t)
        counts: dict[str, int] = {}
        got, n_got = fixed_matmul(x, x_t, w, w_t, epilogue=Epilogue(out_t, counts, res, res_t),
                                  **kw)
        np.testing.assert_array_equal(got, want, err_msg=path)
        assert counts == want_counts, path
        assert n_got == n_acc, path


@settings(deadline=None, max_examples=80)
@given(case=matmul_case(), out_t=formats(max_width=40), data=st.data())
def test_fused_write_back_equals_the_unfused_assignments(case, out_t, data) -> None:
    x, x_t, w, w_t, acc_t, product_t, bias, bias_t = case
    res, res_t = None, None
    if data.draw(st.booleans()):
        res_t = data.draw(formats(max_width=40))
        shape = (x.shape[0], w.shape[1])
        res = np.array(data.draw(st.lists(st.integers(res_t.min_raw, res_t.max_raw),
                                          min_size=shape[0] * shape[1],
                                          max_size=shape[0] * shape[1])),
                       dtype=np.int64).reshape(shape)
        try:
            add_type(out_t, res_t)
        except UsageError:  # the sum itself is not a legal format: refused as the core does
            with pytest.raises(UsageError, match="add_type"):
                fixed_matmul(x, x_t, w, w_t, acc_t=acc_t, product_t=product_t, bias_raw=bias,
                             bias_t=bias_t, epilogue=Epilogue(out_t, {}, res, res_t))
            return
    _check(x, x_t, w, w_t, acc_t, product_t, bias, bias_t, out_t, res, res_t,
           _paths(x, x_t, w, w_t, acc_t, product_t, bias, bias_t))


@pytest.mark.parametrize(("out_t", "res_t"), [
    ("ap_fixed<8,4>", "ap_fixed<8,4>"),
    ("ap_fixed<9,3,AP_RND_CONV,AP_SAT_SYM>", "ap_ufixed<10,5,AP_RND_ZERO,AP_WRAP,2>"),
])
def test_fused_write_back_on_large_products(out_t, res_t) -> None:
    """Large enough for the specialised kernel (w8a8-like formats, and modes off the short
    path); int8-like codes take the float32 BLAS path."""
    out_t, res_t = FixedType.parse(out_t), FixedType.parse(res_t)
    rng = np.random.default_rng(5)
    x_t, w_t = FixedType(8, 4), FixedType(8, -2)
    acc_t, bias_t = FixedType(40, 10), FixedType(16, 2)
    m, k, n = 700, 64, 400
    assert m * n >= SPECIALISE_MIN
    x = rng.integers(x_t.min_raw, x_t.max_raw + 1, (m, k))
    w = rng.integers(w_t.min_raw, w_t.max_raw + 1, (k, n))
    bias = rng.integers(bias_t.min_raw, bias_t.max_raw + 1, n)
    res = rng.integers(res_t.min_raw, res_t.max_raw + 1, (m, n))
    _check(x, x_t, w, w_t, acc_t, None, bias, bias_t, out_t, res, res_t, ["blas32", "exact"])
    accs = [fixed_matmul(x, x_t, w, w_t, acc_t=acc_t, bias_raw=bias, bias_t=bias_t, path=p)
            for p in ("blas32", "exact")]
    np.testing.assert_array_equal(*accs)  # the BLAS end (shift, bias, wrap) on its own


def test_edge_moe_floor64_write_back_with_a_residual() -> None:
    rng = np.random.default_rng(3)
    act, wgt = FixedType.parse("ap_fixed<32,10>"), FixedType.parse("ap_fixed<16,2>")
    x = rng.integers(-(1 << 24), 1 << 24, (300, 96))
    w = rng.integers(wgt.min_raw, wgt.max_raw + 1, (96, 80))
    res = rng.integers(act.min_raw, act.max_raw + 1, (300, 80))  # sums overflow: counted
    out_t = FixedType(32, 10, True, Rounding.RND, Overflow.SAT)
    _check(x, act, w, wgt, act, act, None, None, out_t, res, act, ["floor64", "wrap"])


def test_sums_wider_than_62_bits_take_the_unfused_definition() -> None:
    rng = np.random.default_rng(4)
    x_t, w_t, acc_t = FixedType(8, 4), FixedType(8, 1), FixedType(24, 12)
    out_t, res_t = FixedType(40, 39), FixedType(40, 16)  # out + res needs 64 bits
    x = rng.integers(-128, 128, (6, 5))
    w = rng.integers(-128, 128, (5, 4))
    res = rng.integers(res_t.min_raw, res_t.max_raw + 1, (6, 4))
    _check(x, x_t, w, w_t, acc_t, None, None, None, out_t, res, res_t, ["blas32", "exact"])


def test_bad_epilogues_are_refused() -> None:
    t = FixedType(8, 4)
    x, w = np.zeros((2, 3), np.int64), np.zeros((3, 4), np.int64)
    with pytest.raises(UsageError, match="residual and residual_t must be given together"):
        Epilogue(t, {}, np.zeros((2, 4), np.int64))
    with pytest.raises(UsageError, match="out_t must be a FixedType, got 'ap_fixed<8,4>'"):
        Epilogue("ap_fixed<8,4>", {})
    with pytest.raises(UsageError, match=r"residual has 6 values, the product has 8"):
        fixed_matmul(x, t, w, t, acc_t=FixedType(24, 12),
                     epilogue=Epilogue(t, {}, np.zeros((2, 3), np.int64), t))
    with pytest.raises(UsageError, match=r"needs a 2-D w \(K, N\)"):
        fixed_matmul(x[None], t, w[None], t, acc_t=FixedType(24, 12), epilogue=Epilogue(t, {}))
    with pytest.raises(UsageError, match=r"codes must lie in \[-128, 127\]"):
        fixed_matmul(x, t, w, t, acc_t=FixedType(24, 12),
                     epilogue=Epilogue(t, {}, np.full((2, 4), 300), t))
