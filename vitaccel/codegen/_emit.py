"""``emit``: a quantized graph and a hardware configuration -> the files of a Vitis HLS project."""

from __future__ import annotations

import importlib.resources
import json
from functools import lru_cache
from typing import Any

import jinja2
import numpy as np

from vitaccel.codegen._context import EmitContext, dims
from vitaccel.codegen._render import RENDER
from vitaccel.codegen._tables import WORD_BITS
from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir import INPUT, Graph

__all__ = ["emit", "environment", "MARKER"]

TASK_OPS = frozenset({"moe"})
"""Ops whose kernel reads the task index (an s_axilite argument of the top function)."""

EXIT_OPS = frozenset({"exit_head"})
"""Ops whose kernel returns true when the image leaves the network (its logits are the output)."""

MARKER = ".vitaccel-project"
"""Name of the file that marks a directory as a generated vitaccel project."""


class _PackageLoader(jinja2.BaseLoader):
    """Templates from the ``vitaccel.templates`` package (works from a wheel or a checkout)."""

    def get_source(self, environment: jinja2.Environment, template: str):
        path = importlib.resources.files("vitaccel.templates").joinpath(template)
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        return path.read_text(encoding="utf-8"), None, lambda: True


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of every generated file (strict: an unknown name is an error)."""
    return jinja2.Environment(
        loader=_PackageLoader(), undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
    )


def _flat_first(var: str, ndim: int) -> str:
    return f"&{var}{'[0]' * ndim}"


def _codes_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64)).astype("<i8").tobytes()


def _data_files(graph: Graph, images: Any, golden: Any) -> tuple[dict[str, bytes], int]:
    from vitaccel.sim import simulate
    from vitaccel.sim._simulate import check_images

    x = check_images(graph, images, "emit images")
    if golden is None:
        golden = simulate(graph, x, keep=True)
    if not golden.tensors:
        raise UsageError("emit golden: expected a SimResult from simulate(..., keep=True)")
    out = golden.outputs[graph.outputs[0]]
    if out.shape[0] != x.shape[0]:
        raise UsageError(f"emit golden: {out.shape[0]} image(s) simulated, {x.shape[0]} given")
    layers = np.concatenate(
        [np.asarray(golden.tensors[n.name], dtype=np.int64).reshape(x.shape[0], -1)
         for n in graph], axis=1)
    return {
        "data/images.bin": _codes_bytes(graph.input_fmt.quantize(x)),
        "data/golden_outputs.bin": _codes_bytes(out),
        "data/golden_layers.bin": _codes_bytes(layers),
    }, int(golden.task)


def emit(
    graph: Graph, hw: Any, *, images: Any = None, golden: Any = None,
    embed_weights: bool = False,
) -> dict[str, str | bytes]:
    """Generate a Vitis HLS project for ``graph`` built as ``hw`` describes. No I/O.

    Parameters
    ----------
    graph : Graph
        Quantized model (every op of ``vitaccel.ir.OPS`` with a renderer in ``RENDER``).
    hw : vitaccel.hw.HwConfig
        Board (part), clock (MHz) and datapath (tile sizes, pipeline II, attention slots and
        lanes) of the generated pragmas and build scripts.
    images : array_like, optional
        Float pixels (B, C, H, W) in [0, 1) for the testbench data (``data/*.bin``).
    golden : SimResult, optional
        ``vitaccel.sim.simulate(graph, images, keep=True)`` of the same images (computed here
        when omitted).
    embed_weights : bool
        Compile the packed weights into the kernel as a constant ROM (``weights_rom.h``)
        instead of reading them through the ``weights`` m_axi port (small models only: the
        ROM is on chip).

    Returns
    -------
    dict
        Relative path -> text (``str``) or binary contents (``bytes``); byte-identical for
        identical inputs. See the generated README.md for the file list.
    """
    if golden is not None and images is None:
        raise UsageError("emit: golden data needs the images it was simulated on (images=...)")
    ctx = EmitContext(graph, hw)
    env = environment()
    out_name = graph.outputs[0]
    out_shape, out_fmt = graph.spec(out_name)
    ctx.types.add("output_t", out_fmt, f"model output ({out_name})")
    ctx.types.add("vx_half_t", FixedType(1, 0, False), "the constant 0.5")
    functions, calls, buffers, layers = [], [], [], []
    for node in graph:
        renderer = RENDER.get(node.op)
        if renderer is None:
            raise UsageError(f"codegen: no template for op {node.op!r} of node {node.name!r} "
                             f"(supported: {', '.join(sorted(RENDER))})")
        template, context = renderer(node, ctx)
        functions.append(env.get_template(template).render(**context).rstrip("\n"))
        ident = ctx.ident(node.name)
        var = f"buf_{ident}"
        buffers.append({"type": ctx.tensor_type(node.name), "var": var, "dims": dims(node.shape)})
        args = ["image" if i == INPUT else f"buf_{ctx.ident(i)}" for i in node.inputs] + [var]
        if node.params:
            args.append("wmem")
        if node.op in TASK_OPS:
            args.append("task")
        elems = int(np.prod(node.shape))
        calls.append({"fn": f"k_{ident}", "args": args, "first": _flat_first(var, len(node.shape)),
                      "elems": elems, "exit": node.op in EXIT_OPS})
        layers.append({"name": node.name, "elems": elems})

    from vitaccel import __version__

    c, h, w = graph.input_shape
    data, task = ({}, 0) if images is None else _data_files(graph, images, golden)
    num_images = 0 if images is None else len(np.frombuffer(data["data/images.bin"], "<i8")) \
        // (c * h * w)
    info = {
        "version": __version__,
        "model": graph.name,
        "model_id": "".join(ch if ch.isalnum() else "_" for ch in graph.name),
        "precision": getattr(graph.precision, "name", str(graph.precision)),
        "hw_name": hw.name,
        "part": hw.board.part,
        "clock_mhz": f"{hw.clock_mhz:g}",
        "period_ns": f"{1000.0 / hw.clock_mhz:.3f}",
        "input_shape": list(graph.input_shape),
        "input_dims": dims(graph.input_shape),
        "image_elems": c * h * w,
        "output_name": out_name,
        "output_elems": int(np.prod(out_shape)),
        "output_first": _flat_first(f"buf_{ctx.ident(out_name)}", len(out_shape)),
        "weight_words": max(1, ctx.weights.words),
        "max_images": max(1, num_images),
        "num_images": num_images,
        "word_bits": WORD_BITS,
        "data_files": sorted(data),
        "embed_weights": embed_weights,
        "has_task": any(n.op in TASK_OPS for n in graph),
        "test_task": task,
    }
    weights_bin = ctx.weights.to_bytes()
    files: dict[str, str | bytes] = {
        "kernel.cpp": env.get_template("kernel.cpp.j2").render(
            functions=functions, calls=calls, buffers=buffers, **info),
        "kernel.h": env.get_template("kernel.h.j2").render(layers=layers, **info),
        "types.h": env.get_template("types.h.j2").render(types=ctx.types.rows(), **info),
        "tables.h": env.get_template("tables.h.j2").render(roms=ctx.roms.roms, **info),
        "vitaccel_ops.h": env.get_template("vitaccel_ops.h.j2").render(**info),
        "testbench.cpp": env.get_template("testbench.cpp.j2").render(**info),
        "Makefile": env.get_template("Makefile.j2").render(**info),
        "hls_config.cfg": env.get_template("hls_config.cfg.j2").render(**info),
        "run_hls.tcl": env.get_template("run_hls.tcl.j2").render(**info),
        "README.md": env.get_template("README.md.j2").render(**info),
        "weights.bin": weights_bin,
        "weights_layout.json": json.dumps(
            {"word_bits": WORD_BITS, "byte_order": "little", "words": ctx.weights.words,
             "tensors": ctx.weights.entries}, indent=1) + "\n",
    }
    if embed_weights:
        words = np.frombuffer(weights_bin, dtype="<u8")
        files["weights_rom.h"] = env.get_template("weights_rom.h.j2").render(
            words=[f"0x{int(w):016x}ULL" for w in words], **info)
    files.update(data)
    files[MARKER] = json.dumps({"generator": "vitaccel", "version": __version__,
                                "model": graph.name, "hw": hw.name,
                                "files": sorted(files)}, indent=1) + "\n"
    return files
