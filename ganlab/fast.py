"""The fast path's last step: the whole training iteration replayed from one CUDA graph.

A small GAN's iteration (k D updates and one G update, forward, backward and
Adam) is a few hundred tiny kernels. Launched one by one from Python, the
launches cost more than the work: the GPU idles between them. A CUDA graph
records the launches once and replays them all with one call.

What makes capture sound here:
- Every input lives at a fixed address: the data is resident, batches are
  random indices into it, and the noise is drawn inside the graph.
- The random numbers advance on each replay: the run's generators (data and
  noise; dropout and the gradient penalty) are registered with the graph.
- Adam runs with `capturable=True` and a tensor learning rate, so its step
  count lives on the GPU and lr decay writes into the tensor the graph reads.
- BatchNorm's running statistics are updated in place, which replays fine.
- A gradient penalty (WGAN-GP's at interpolates, R1's at the data) is a double
  backward: autograd.grad with create_graph, then backward through it. Both are
  ordinary kernels on fixed shapes and are captured like the rest; R1 draws no
  random numbers, GP's points come from the registered model stream.
What stays eager: single D or G steps (teaching), optimizers other than Adam
(their state or lr would be baked into the graph), and any model whose
capture fails. Those train exactly as before, and `reason` says why.
"""
from __future__ import annotations

import logging
import threading

import torch

CAPTURE_AT_STEP = 3     # eager iterations first: cuDNN picks its algorithms, Adam allocates its state

log = logging.getLogger(__name__)
_capture_lock = threading.Lock()    # CUDA allows one capture at a time per process


def graph_blocker(cfg, device: torch.device) -> str | None:
    """Why this config's iteration can't be captured, or None when it can."""
    if not cfg.train.fast:
        return "the fast path is switched off"
    if device.type != "cuda":
        return "CUDA graphs need a CUDA GPU"
    if cfg.opt_g.name != "adam" or cfg.opt_d.name != "adam":
        return "only Adam's update can be captured (SGD's and RMSprop's run eagerly)"
    return None


class CapturedIteration:
    """One training iteration recorded as a CUDA graph.

    `iteration()` is the trainer's eager iteration and `last` the dict it leaves
    its metrics in. Building this runs one real iteration on the capture's side
    stream (PyTorch's recipe: that settles lazy allocations, such as cuBLAS's
    workspace for that stream), then records another without running it.
    `replay()` runs the recorded one. The metrics the graph writes live in
    `outputs`, tensors overwritten in place by each replay.
    """

    def __init__(self, iteration, last: dict, generators: tuple[torch.Generator, ...]):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            iteration()
        real = dict(last)
        try:
            self.graph = torch.cuda.CUDAGraph()
            for generator in generators:
                self.graph.register_generator_state(generator)
            # thread_local: other runs' threads may keep launching work meanwhile.
            with _capture_lock, torch.cuda.graph(self.graph, stream=stream, capture_error_mode="thread_local"):
                iteration()
            self.outputs = dict(last)
        finally:
            last.update(real)     # what the trainer records for this step: the real iteration's metrics
            torch.cuda.current_stream().wait_stream(stream)

    def replay(self) -> dict:
        self.graph.replay()
        return self.outputs


def try_capture(iteration, last: dict, generators: tuple) -> tuple[CapturedIteration | None, str]:
    """Capture, or say why not: a model that can't be captured trains eagerly."""
    try:
        return CapturedIteration(iteration, last, generators), "fast: one CUDA graph per iteration"
    except Exception as e:  # noqa: BLE001 - any capture failure falls back to eager
        log.warning("CUDA graph capture failed; training eagerly: %s", e)
        torch.cuda.synchronize()
        return None, f"eager: the CUDA graph capture failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
