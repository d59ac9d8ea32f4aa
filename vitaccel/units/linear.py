"""Unified linear engine: bias-initialised accumulation with optional fused GELU and residual.

Semantics of one output element (Edge-MoE's linear unit, generalised)::

    acc = accum(bias)                                  # the bias is the initial value
    for k in 0..in-1:  acc = accum(acc + product(x[k] * w[n, k]))
    y = gelu(acc)            if the node fuses GELU    # in the GELU variant's output format
    y = out(y)                                         # assignment to the output format
    y = out(y + residual)    if the node fuses a residual add

Tiling (hardware config) changes the schedule, not the order of additions into one
accumulator, so it does not change any bit.

``kernel="shift"`` (ShiftAddViT power-of-two weights, params ``shift_sign``/``shift_exp``):
each product is the shifted term ``sign * x * 2**exp`` assigned to ``product_t`` (AP_TRN:
floor of the exact term, i.e. negate then shift), accumulated as above; computed by
``vitaccel.units.shiftadd.shift_linear``. ``weight`` holds the same power-of-two values exactly,
so the MAC semantics with ``product_t`` give the same bits.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from vitaccel.fixed import Epilogue, FixedType, fixed_matmul
from vitaccel.fixed._epilogue import finish_codes
from vitaccel.ir import Node
from vitaccel.units._ops import add_assign, produced_codes
from vitaccel.units.gelu import Gelu
from vitaccel.units.shiftadd import shift_linear

__all__ = ["gelu_assigned", "simulate", "reference", "matmul_rows"]


def matmul_rows(
    x: np.ndarray, x_t: FixedType, node: Node, overflow: dict[str, int], weight: str = "weight",
    bias: str = "bias", epilogue: Epilogue | None = None,
) -> np.ndarray:
    """Accumulate ``bias + x @ weight.T`` in the node's accumulator format (then, with an
    ``epilogue``, assign it to the output format and add a residual in the same pass).

    Parameters
    ----------
    x : np.ndarray
        Raw codes (..., in) in ``x_t``.
    node : Node
        Supplies ``params[weight]`` (out, in), ``params[bias]`` (out,), ``attrs["acc_t"]`` and
        ``attrs["product_t"]`` (None: full-precision products).
    overflow : dict
        Counter of overflowed values by role; ``"accum"`` is incremented here.
    epilogue : Epilogue, optional
        Write-back fused into the last pass over the result.

    Returns
    -------
    np.ndarray
        Raw codes (..., out) in ``node.attrs["acc_t"]`` (in ``epilogue.out_t`` with one).
    """
    w, b = node.params[weight], node.params[bias]
    lead = x.shape[:-1]
    if node.attrs.get("kernel") == "shift":
        acc, n = shift_linear(
            x.reshape(-1, x.shape[-1]), x_t, node.params["shift_sign"].raw,
            node.params["shift_exp"].raw, acc_t=node.attrs["acc_t"],
            term_t=node.attrs["product_t"], bias_raw=b.raw, bias_t=b.fmt, return_overflow=True,
        )
        if epilogue is not None:
            acc = finish_codes(acc, node.attrs["acc_t"], epilogue)
    else:
        acc, n = fixed_matmul(
            x.reshape(-1, x.shape[-1]), x_t, w.raw_t, w.fmt,
            acc_t=node.attrs["acc_t"], product_t=node.attrs["product_t"],
            bias_raw=b.raw, bias_t=b.fmt, return_overflow=True, epilogue=epilogue,
        )
    overflow["accum"] = overflow.get("accum", 0) + int(n)
    return acc.reshape(*lead, w.shape[0])


def gelu_assigned(gelu: Gelu, acc: np.ndarray, acc_t: FixedType, dst: FixedType, role: str,
                  overflow: dict[str, int]) -> np.ndarray:
    """``dst(gelu(acc))`` on the accumulator codes of a product (in one pass where the
    variant's kernel takes the assignment); overflowed values of the assignment go under
    ``role``."""
    x = produced_codes(acc, acc_t, "gelu input")
    return gelu._forward_assigned(x, acc_t, dst, role, overflow)


def simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
             overflow: dict[str, int]) -> np.ndarray:
    """Bit-exact linear engine on a batch: inputs[0] (B, T, in), inputs[1] residual (B, T, out)."""
    gelu = node.attrs["gelu"]
    if gelu is None:  # accumulator -> output -> residual sum in the product's last pass
        res = (inputs[1], fmts[1]) if node.attrs["residual"] else ()
        return matmul_rows(inputs[0], fmts[0], node, overflow,
                           epilogue=Epilogue(node.fmt, overflow, *res))
    y = matmul_rows(inputs[0], fmts[0], node, overflow)
    y = gelu_assigned(gelu, y, node.attrs["acc_t"], node.fmt, "out", overflow)
    overflow.setdefault("out", 0)  # reported even when nothing overflowed
    if node.attrs["residual"]:
        y = add_assign(node.fmt, y, node.fmt, inputs[1], fmts[1], overflow, "residual")
    return y


def gelu_exact(x: np.ndarray) -> np.ndarray:
    """GELU with the exact erf form, float64."""
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """The float64 function the node approximates (reference weights, exact GELU)."""
    y = inputs[0] @ node.params["weight"].ref.T + node.params["bias"].ref
    if node.attrs["gelu"] is not None:
        y = gelu_exact(y)
    if node.attrs["residual"]:
        y = y + inputs[1]
    return y
