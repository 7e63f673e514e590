"""What this machine offers for training, in words for the UI and CLI."""
from __future__ import annotations

import os

import torch


def device_summary() -> str:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"CUDA · {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return f"CPU · {os.cpu_count()} cores (no CUDA GPU found)"
