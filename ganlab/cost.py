"""What a config will cost before anything is built: memory, and time per step.

A link, an upload or a checkpoint can ask for any value inside the config's
ranges: a 1D model 8,192 wide and 16 deep, a batch of a million, k = 1,000.
Each is a valid config, and each would take the server down. So a run is
priced first, on PyTorch's meta device (shapes without memory, in
milliseconds), and one over this machine's budget is refused with its cost in
words, before a byte is allocated.

The estimates are rough on purpose (a factor of two either way): they tell a
run that fits from one that would need a hundred times the machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganlab.config import ConfigError, Experiment

MAX_STEP_SECONDS = 5.0        # one iteration: beyond this, every chart waits too long
# One D or G update is the longest stretch between two stop points (Stop is read between
# updates), so it bounds how long Stop takes. Estimates err a factor of two either way,
# so half a second estimated keeps Stop within a second.
MAX_UPDATE_SECONDS = 0.5
CPU_FLOPS_PER_CORE = 20e9     # float32 a core sustains on these models; measured 40-90 GFLOP/s on 2 cores
GPU_FLOPS = 20e12             # far below an H100's peak, as small models reach
RAM_SHARE = 1 / 8             # a run may take this share of the machine's memory: 8 runs fit at once
GPU_SHARE = 1 / 2
BYTES = 4                     # float32


class BudgetError(ConfigError):
    """A config would need more memory or time per step than this machine gives a run."""


@dataclass(frozen=True)
class Cost:
    params: int            # G's and D's (or the autoencoder's) parameters
    memory: int            # bytes at the peak of a training step, roughly
    flops: float           # per iteration (k D steps and one G step)
    updates: int = 1       # optimizer updates in one iteration: k + 1 for a GAN, 1 for an autoencoder

    def seconds(self, device: str) -> float:
        return self.flops / (GPU_FLOPS if device == "cuda" else CPU_FLOPS_PER_CORE * (os.cpu_count() or 1))

    def update_seconds(self, device: str) -> float:
        """The longest stretch a run's thread works without a stop point, roughly."""
        return self.seconds(device) / self.updates

    def words(self, device: str) -> str:
        return (f"about {_bytes(self.memory)} and {self.seconds(device):.2g} s a step "
                f"({self.update_seconds(device):.2g} s an update)")


def estimate(cfg: Experiment) -> Cost:
    """Parameters, peak memory and FLOPs of one iteration, without allocating the models."""
    from ganlab.models import AUTOENCODERS, build_models, is_conditional
    B, k = cfg.train.batch_size, cfg.train.d_steps
    with torch.device("meta"):
        if cfg.model.name in AUTOENCODERS:
            nets = [AUTOENCODERS[cfg.model.name].build(cfg)]
            run = lambda: nets[0](torch.empty(B, 1, 28, 28))  # noqa: E731
            passes, updates = 3, 1                          # forward and backward, once a step
        else:
            nets = list(build_models(cfg))
            labels = torch.zeros(B, dtype=torch.long) if is_conditional(cfg.model.name) else None
            run = lambda: nets[1](nets[0](torch.empty(B, cfg.noise.dim), labels), labels)  # noqa: E731
            # k D steps (G forward, D forward and backward on real and fake), then G's step.
            passes, updates = 3 * (2 * k + 1), k + 1
        outputs = _activations(nets)
        with FlopCounterMode(display=False) as flops:
            run()
    params = sum(p.numel() for net in nets for p in net.parameters())
    # Weights, gradients and two Adam moments; activations kept for backward, their
    # gradients, and D's pass over real and fake together.
    memory = BYTES * (4 * params + 6 * outputs.total)
    return Cost(params=params, memory=memory, flops=float(flops.get_total_flops()) * passes, updates=updates)


class _activations:
    """Counts the elements every leaf module outputs in one forward pass."""

    def __init__(self, nets: list[nn.Module]):
        self.total = 0
        for net in nets:
            for m in net.modules():
                if not list(m.children()):
                    m.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        for t in output if isinstance(output, tuple) else (output,):
            if isinstance(t, torch.Tensor):
                self.total += t.numel()


def budget(device: str) -> tuple[int, float]:
    """(bytes, seconds per step) this machine gives one run on `device`."""
    if device == "cuda" and torch.cuda.is_available():
        memory = int(torch.cuda.get_device_properties(0).total_memory * GPU_SHARE)
    else:
        memory = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * RAM_SHARE)
    return memory, MAX_STEP_SECONDS


def check(cfg: Experiment) -> Cost:
    """The config's cost, or BudgetError naming it, the budget and what to lower."""
    device = "cuda" if cfg.train.device != "cpu" and torch.cuda.is_available() else "cpu"
    try:
        cost = estimate(cfg)
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as e:  # a model that cannot be shaped
        raise BudgetError("model", f"cannot be priced ({type(e).__name__})") from None
    memory, seconds = budget(device)
    if cost.memory > memory or cost.seconds(device) > seconds or cost.update_seconds(device) > MAX_UPDATE_SECONDS:
        knob = "train.d_steps" if cfg.train.d_steps > 20 else (
            "train.batch_size" if cost.memory - BYTES * 4 * cost.params > BYTES * 4 * cost.params else "model")
        raise BudgetError(knob, f"this run needs {cost.words(device)}; a run on this server ({device}) may take "
                                f"{_bytes(memory)} and {seconds:g} s a step, {MAX_UPDATE_SECONDS:g} s an update. Lower the batch size, k or the "
                                f"model's size")
    return cost


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:,.0f} TB"
