"""Bit-exact Xilinx ``ap_fixed`` arithmetic on integer codes.

A value is a raw integer code plus its :class:`FixedType`; ``value = raw * 2**-frac_bits``.
Assignment (:meth:`FixedType.quantize`, :meth:`FixedType.cast`) rounds then handles overflow
exactly as the Vitis HLS headers do; arithmetic is full precision.
"""

from vitaccel.fixed._arith import (
    add_type,
    fixed_add,
    fixed_mul,
    fixed_sub,
    mul_type,
    sub_type,
    sum_type,
)
from vitaccel.fixed._epilogue import Epilogue
from vitaccel.fixed._format import FixedType, Overflow, Rounding
from vitaccel.fixed._headers import ap_types_include_dir
from vitaccel.fixed._matmul import fixed_matmul

__all__ = [
    "Epilogue",
    "FixedType",
    "Overflow",
    "Rounding",
    "add_type",
    "ap_types_include_dir",
    "fixed_add",
    "fixed_matmul",
    "fixed_mul",
    "fixed_sub",
    "mul_type",
    "sub_type",
    "sum_type",
]
