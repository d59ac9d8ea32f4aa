"""Shipped hardware configurations (YAML data files; see vitaccel.hw)."""
