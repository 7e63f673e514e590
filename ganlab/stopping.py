"""Stop points: where a run's thread may give up its work at once, because Stop was pressed.

A Run's thread trains inside `stoppable(requested)`. Code deep below it (a task
loading its data, the meters' classifier training, a wide model being built, the
k D updates of one iteration) calls `check()` at points where giving up leaves
nothing half written; `check()` raises Stopped there once a stop was requested,
and the thread unwinds to its Run, which ends as "stopped".

The request is per thread (a thread-local), not an argument: the points sit in
code that every thread runs (a page trains the classifier too, the CLI builds
models), and only a Run's own thread can be stopped.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn

_local = threading.local()


class Stopped(Exception):
    """Stop was requested; raised at a stop point so that the thread ends within a second."""


@contextmanager
def stoppable(requested: Callable[[], bool]):
    """On this thread, within the block, check() raises Stopped once requested() is true."""
    outer = getattr(_local, "requested", None)
    _local.requested = requested
    try:
        yield
    finally:
        _local.requested = outer


def requested() -> bool:
    """Whether this thread's run was asked to stop (False outside `stoppable`)."""
    asked = getattr(_local, "requested", None)
    return asked is not None and asked()


def check(where: str = "") -> None:
    """A stop point: raise Stopped if this thread's run was asked to stop."""
    if requested():
        raise Stopped(where or "stopped")


def _check_per_layer(module, name, param):
    # Building a wide model is one long call (build_models): an 8192-wide Linear takes
    # about a second to initialize on a CPU, and a deep G and D have dozens of them.
    # Every Linear and Conv registers its weight just before initializing it, so a
    # check here lets a stop through between two layers.
    check("stopped while the model was being built")


torch.nn.modules.module.register_module_parameter_registration_hook(_check_per_layer)


def inside_passes(nets: list[nn.Module], may_stop: Callable[[], bool], why: Callable[[], str]) -> None:
    """Stop points before every layer's forward and backward pass in `nets`.

    Stop is read between a step's stages; one stage (D's forward and backward pass
    on a large batch) can itself take a second on a CPU. These points let a stop
    through layer by layer, when may_stop() says the step is old enough to be cut
    short; the exception unwinds out of backward() before any optimizer step.
    Each costs a Python call per layer, so a trainer adds them only for slow updates.
    """
    def before_backward(grad_outputs):
        if may_stop() and requested():
            raise Stopped(why())

    def before_forward(module, inputs):
        before_backward(None)

    def after_forward(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.grad_fn is not None:
            output.grad_fn.register_prehook(before_backward)

    for net in nets:
        for layer in net.modules():
            if not list(layer.children()) and any(True for _ in layer.parameters(recurse=False)):
                layer.register_forward_pre_hook(before_forward)
                layer.register_forward_hook(after_forward)
