"""Integer-only graph variants: build-time checks, input rescale, overflow counting per role,
and graphs using them with every precision preset (bit-exactness and error bounds:
test_units_intvariants.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir import PRECISION_PRESETS
from vitaccel.ir._build import Numerics, build_graph
from vitaccel.models import ViTConfig, build_model
from vitaccel.sim import run_reference, simulate
from vitaccel.units import variant_registries
from vitaccel.units.gelu_int import IbertGelu, IvitGelu
from vitaccel.units.layernorm_int import IvitLayerNorm
from vitaccel.units.softmax_int import IbertSoftmax, IvitSoftmax

F = FixedType.parse
X_T = F("ap_fixed<32,10>")


# ---------------------------------------------------------------- (c) build, overflow, graph
def test_registries_roles_and_build_from_presets():
    reg = variant_registries()
    assert reg["softmax"]["ibert"] is IbertSoftmax and reg["softmax"]["ivit"] is IvitSoftmax
    assert reg["gelu"]["ibert"] is IbertGelu and reg["gelu"]["ivit"] is IvitGelu
    assert reg["layernorm"]["ivit"] is IvitLayerNorm
    assert IbertSoftmax.ROLES == ("softmax.int_in", "softmax.exp", "softmax.prob")
    assert IvitGelu.ROLES == ("gelu.ivit_in", "gelu.out")
    assert IvitLayerNorm.ROLES == ("layernorm.int_in", "layernorm.norm", "layernorm.out")
    for prec in PRECISION_PRESETS.values():
        for kind in ("softmax", "gelu", "layernorm"):
            for name in ("ibert", "ivit"):
                if name in reg[kind]:
                    v = reg[kind][name].build(prec.fmt, **({"eps": 1e-6} if kind == "layernorm"
                                                           else {}))
                    assert v.out_t == prec.fmt(f"{kind}.{'prob' if kind == 'softmax' else 'out'}")


@pytest.mark.parametrize(("build", "match"), [
    (lambda: IbertGelu(in_t=F("ap_fixed<18,10>"), out_t=X_T), "10..24 fractional"),
    (lambda: IvitGelu(in_t=F("ap_fixed<18,10>"), out_t=X_T), "too fine"),
    (lambda: IvitGelu(in_t=F("ap_fixed<13,10>"), out_t=X_T, sigmoid_bits=40), "sigmoid_bits"),
    (lambda: IvitSoftmax(in_t=F("ap_fixed<12,5>"), prob_t=F("ap_ufixed<16,1>")), "hold -32"),
    (lambda: IvitSoftmax(in_t=F("ap_ufixed<12,6>"), prob_t=F("ap_ufixed<16,1>")), "signed"),
    (lambda: IbertSoftmax(in_t=F("ap_fixed<22,6>"), prob_t=F("ap_ufixed<16,1>"),
                          exp_t=F("ap_ufixed<18,1>")), "2..14 fractional"),
    (lambda: IbertSoftmax(in_t=F("ap_fixed<14,6>"), prob_t=F("ap_ufixed<16,1>"),
                          exp_t=F("ap_ufixed<40,1>")), "softmax.exp"),
    (lambda: IbertSoftmax(in_t=F("ap_fixed<14,6>"), prob_t=F("ap_ufixed<16,1>"),
                          exp_t=F("ap_ufixed<18,1>"), scale_bits=1), "scale_bits"),
    (lambda: IvitSoftmax(in_t=F("ap_fixed<14,6>"), prob_t=F("ap_ufixed<40,1>")), "softmax.prob"),
    (lambda: IvitLayerNorm(in_t=F("ap_ufixed<22,10>"), norm_t=X_T, out_t=X_T), "signed"),
    (lambda: IvitLayerNorm(in_t=F("ap_fixed<22,10>"), norm_t=X_T, out_t=X_T, scale_bits=40),
     "scale_bits"),
])
def test_build_time_errors_name_the_role(build, match):
    with pytest.raises(UsageError, match=match):
        build()


def test_a_coarse_input_is_rescaled_exactly_to_the_finer_working_lsb():
    coarse = F("ap_fixed<12,6>")  # LSB 2^-6, too coarse for i-GELU: its in role has F = 14
    g = IbertGelu(in_t=F("ap_fixed<24,10>"), out_t=X_T)
    x = np.arange(coarse.min_raw, coarse.max_raw + 1)
    np.testing.assert_array_equal(g.in_t.cast(x, coarse), x << 8)
    np.testing.assert_array_equal(g.forward(x, coarse), g.forward(x << 16, X_T))


def test_overflow_is_counted_under_the_roles():
    ovf: dict[str, int] = {}
    g = IbertGelu(in_t=F("ap_fixed<20,4,AP_TRN,AP_SAT>"), out_t=F("ap_fixed<16,3>"))
    y = g.forward(X_T.quantize(np.array([-9.0, -1.0, 0.5, 2.0, 5.0, 9.0, 12.0])), X_T, ovf)
    assert ovf == {"gelu.ibert_in": 3, "gelu.out": 3}  # |x| >= 8 saturate; gelu >= 4 wraps
    assert y.shape == (7,)
    ovf = {}
    g = IvitGelu(in_t=F("ap_fixed<8,5,AP_RND,AP_SAT>"), out_t=F("ap_fixed<16,4>"))
    g.forward(X_T.quantize(np.array([[-20.0, 1.0, 6.0, 20.0]])), X_T, ovf)
    assert ovf == {"gelu.ivit_in": 2, "gelu.out": 1}  # +-20 saturate; only gelu(15.9) >= 8
    ovf = {}
    sm = IbertSoftmax(in_t=F("ap_fixed<14,6>"), prob_t=F("ap_ufixed<12,-1>"),
                      exp_t=F("ap_ufixed<18,1>"))
    sm.forward(X_T.quantize(np.array([[0.0, -20.0, -30.0], [1.0, 1.0, 1.0]])), X_T, overflow=ovf)
    assert ovf == {"softmax.prob": 1}  # p ~ 1 does not fit below 0.5; p = 1/3 does
    ovf = {}
    ln = IvitLayerNorm(in_t=F("ap_fixed<16,4,AP_TRN,AP_SAT>"), norm_t=F("ap_fixed<16,2>"),
                       out_t=F("ap_fixed<16,2>"))
    x = X_T.quantize(np.array([[0.0] * 15 + [100.0]]))
    ln.forward(x, X_T, np.full(16, 2**14), F("ap_fixed<16,5>"), np.zeros(16, np.int64),
               F("ap_fixed<16,5>"), overflow=ovf)
    # 100 saturates to 8; its norm sqrt(15) wraps in [-2, 2); the others' 8 * -0.258 leave [-2, 2)
    assert ovf == {"layernorm.int_in": 1, "layernorm.norm": 1, "layernorm.out": 15}


def _tiny_model():
    cfg = ViTConfig(name="tiny-int", img_size=(8, 12), patch_size=4, in_chans=3, embed_dim=12,
                    depth=2, num_heads=3, mlp_hidden=20, num_classes=5, mean=(0.4, 0.5, 0.6),
                    std=(0.2, 0.3, 0.25))
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return cfg, model.eval()


@pytest.mark.parametrize("preset", sorted(PRECISION_PRESETS))
@pytest.mark.parametrize("name", ["ibert", "ivit"])
def test_graph_with_integer_units_simulates(preset, name):
    """Every preset builds and simulates a graph with the integer units; its logits stay with
    those of the default (ROM) units and as close to the float model as theirs (measured
    cosine to the default units >= 0.9989)."""
    cfg, model = _tiny_model()
    imgs = np.random.default_rng(1).integers(0, 256, (3, 3, *cfg.img_size)) / 256.0
    graph = build_graph(model, preset, numerics=Numerics(softmax=name, gelu=name,
                                                         layernorm="ivit"), calibration=imgs)
    assert graph["blocks.0.attn"].attrs["softmax"].NAME == name
    assert graph["blocks.1.mlp.fc1"].attrs["gelu"].NAME == name
    assert isinstance(graph["blocks.0.norm1"].attrs["variant"], IvitLayerNorm)
    res = simulate(graph, imgs)
    base = build_graph(model, preset, calibration=imgs)
    out = graph.outputs[0]
    logits = graph[out].fmt.to_float(res.outputs[out])
    base_logits = base[out].fmt.to_float(simulate(base, imgs).outputs[out])
    ref = run_reference(graph, imgs)[out]
    assert logits.shape == ref.shape == (3, cfg.num_classes)

    def cos(a, b):
        return (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)

    assert cos(logits, base_logits) > 0.995
    assert cos(logits, ref) > cos(base_logits, ref) - 0.02
    unit_roles = {*IvitLayerNorm.ROLES, *variant_registries()["softmax"][name].ROLES,
                  *variant_registries()["gelu"][name].ROLES}
    assert not any(n for roles in res.overflow.values() for r, n in roles.items()
                   if r in unit_roles)
