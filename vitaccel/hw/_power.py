"""Inputs of the power and energy model: per-resource dynamic-energy coefficients.

These are ESTIMATES in the spirit of the Xilinx Power Estimator (XPE), not measurements. They
are round figures of the right order of magnitude for each process node and memory technology,
chosen so that relative comparisons between design points are meaningful; absolute watts can
be off by tens of percent. A board's static (leakage + always-on) power lives with the other
board facts in ``hw_configs/boards.yaml``. Any coefficient can be overridden per configuration
in the ``energy:`` section of a hardware config (for example with numbers from a real XPE or
Vivado ``report_power`` run).

Assumptions behind the defaults (typical process, ~50 C junction, XPE default toggle rate of
12.5 % for logic):

* 16 nm UltraScale+ (Zynq UltraScale+ MPSoC, Kria K26, Virtex UltraScale+ / Alveo), 0.85 V:
  one DSP48E2 multiply-accumulate with 16-bit operands ~3 pJ including its pipeline registers;
  ~3 mW per 1,000 active LUTs at 100 MHz including local routing; ~0.6 mW per 1,000 FFs at
  100 MHz including their share of the clock tree; one 36 Kb block-RAM port access (up to 72
  bits) ~10 pJ; one 288 Kb UltraRAM port access (72 bits) ~20 pJ.
* 7 nm Versal: about two thirds of the 16 nm figures (lower core voltage and capacitance).
* Off-chip memory, interface and device together: DDR4 ~20 pJ/bit (160 pJ/byte), LPDDR4
  ~8 pJ/bit (64 pJ/byte), HBM2 ~4 pJ/bit (32 pJ/byte; O'Connor et al., "Fine-Grained DRAM",
  MICRO 2017, report ~3.9 pJ/bit for HBM2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from vitaccel.hw._checks import Real, check_fields

__all__ = ["EnergyModel", "EnergyOverrides", "default_energy_model"]


def _coeff(unit: str) -> dataclasses.Field:
    return field(metadata={"check": Real(lo=0.0, strict=False, unit=unit)})


def _override(unit: str) -> dataclasses.Field:
    return field(default=None, metadata={"check": Real(lo=0.0, strict=False, unit=unit,
                                                       optional=True)})


@dataclass(frozen=True)
class EnergyModel:
    """Dynamic-energy coefficients of one board (estimates, XPE-style; not measured).

    Attributes
    ----------
    dsp_mac_pj : float
        Energy of one multiply-accumulate in one DSP slice (16-bit class operands), pJ.
    lut_mw_per_k_at_100mhz : float
        Power of 1,000 active LUTs clocked at 100 MHz at 12.5 % toggle, mW (scales linearly
        with clock).
    ff_mw_per_k_at_100mhz : float
        Power of 1,000 active flip-flops at 100 MHz including clock tree share, mW.
    bram36_access_pj : float
        Energy of one port access (read or write, up to 72 bits) of a 36 Kb block RAM, pJ.
    uram_access_pj : float
        Energy of one port access (72 bits) of a 288 Kb UltraRAM, pJ.
    dram_pj_per_byte : float
        Energy of moving one byte to or from off-chip DRAM/HBM (device + interface), pJ.
    """

    dsp_mac_pj: float = _coeff("pJ")
    lut_mw_per_k_at_100mhz: float = _coeff("mW")
    ff_mw_per_k_at_100mhz: float = _coeff("mW")
    bram36_access_pj: float = _coeff("pJ")
    uram_access_pj: float = _coeff("pJ")
    dram_pj_per_byte: float = _coeff("pJ")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class EnergyOverrides:
    """Per-configuration replacements for :class:`EnergyModel` coefficients; ``None`` keeps
    the board's default. Field names and units are those of :class:`EnergyModel`."""

    dsp_mac_pj: float | None = _override("pJ")
    lut_mw_per_k_at_100mhz: float | None = _override("mW")
    ff_mw_per_k_at_100mhz: float | None = _override("mW")
    bram36_access_pj: float | None = _override("pJ")
    uram_access_pj: float | None = _override("pJ")
    dram_pj_per_byte: float | None = _override("pJ")

    def __post_init__(self) -> None:
        check_fields(self)

    def apply(self, model: EnergyModel) -> EnergyModel:
        """Return ``model`` with every coefficient that is set here replaced."""
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(model, **changes)


# Logic-fabric coefficients per process node (see the module docstring for the assumptions).
_FABRIC_16NM = {
    "dsp_mac_pj": 3.0,
    "lut_mw_per_k_at_100mhz": 3.0,
    "ff_mw_per_k_at_100mhz": 0.6,
    "bram36_access_pj": 10.0,
    "uram_access_pj": 20.0,
}
_FABRIC_7NM = {
    "dsp_mac_pj": 2.0,
    "lut_mw_per_k_at_100mhz": 2.0,
    "ff_mw_per_k_at_100mhz": 0.4,
    "bram36_access_pj": 7.0,
    "uram_access_pj": 14.0,
}
_FABRIC_BY_FAMILY = {
    "zynq-ultrascale+": _FABRIC_16NM,
    "virtex-ultrascale+": _FABRIC_16NM,
    "versal-ai-core": _FABRIC_7NM,
}
_DRAM_PJ_PER_BYTE = {"ddr4": 160.0, "lpddr4": 64.0, "hbm2": 32.0}


def default_energy_model(family: str, memory_type: str) -> EnergyModel:
    """Return the default (estimated) coefficients for a device family and memory type.

    Parameters
    ----------
    family : str
        Board family as in :class:`vitaccel.hw.Board` (e.g. ``"zynq-ultrascale+"``).
    memory_type : str
        Off-chip memory technology: ``"ddr4"``, ``"lpddr4"`` or ``"hbm2"``.
    """
    return EnergyModel(**_FABRIC_BY_FAMILY[family], dram_pj_per_byte=_DRAM_PJ_PER_BYTE[memory_type])
