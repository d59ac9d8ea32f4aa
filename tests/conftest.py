"""Test-session settings shared by every test file."""

import os

import torch
from hypothesis import settings

# Two torch threads per test worker thrash on a 2-core machine; one is much faster here.
torch.set_num_threads(1)

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
