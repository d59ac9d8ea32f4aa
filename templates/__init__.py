"""Jinja2 templates of the generated Vitis HLS project (see vitaccel.codegen)."""
