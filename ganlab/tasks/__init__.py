"""Tasks: what is being learned. A task supplies real batches and noise to the
Trainer, and turns the current models into views (charts' data) and meters.

TASKS is the registry, name -> TaskSpec. The config takes its valid task names
from it, the export and the pages their words. Adding a task (3D toys, say) is
one file with a class like Gauss1D and one register_task line here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    label: str     # what the pages call its lab: "1D Gaussian lab"
    page: str      # the lab page that trains its GANs: pages/<page>.py
    cls: str       # "module:Class". Imported only when a run needs it: the task modules
                   # bring data loaders and meters that a config check should not pay for.

    def task_class(self) -> type:
        module, name = self.cls.split(":")
        return getattr(importlib.import_module(module), name)


TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    if spec.name in TASKS:
        raise ValueError(f"a task named {spec.name!r} is registered already")
    TASKS[spec.name] = spec
    return spec


register_task(TaskSpec("gauss1d", "1D Gaussian lab", "gauss1d", "ganlab.tasks.gauss1d:Gauss1D"))
register_task(TaskSpec("toy2d", "2D toy lab", "toy2d", "ganlab.tasks.toy2d:Toy2D"))
register_task(TaskSpec("mnist", "MNIST lab", "mnist", "ganlab.tasks.mnist:Mnist"))


def make_task(cfg, device):
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r}")
    return TASKS[cfg.task].task_class()(cfg, device)
