"""Model registry: name -> ModelSpec, what each model is and how to build it.

Every generator is called as G(z, labels) and every discriminator as
D(x, labels), returning one raw score per sample (a logit, or a critic value
for the Wasserstein losses); unconditional models ignore the labels.

A spec says which task the model learns and what a page calls it, so the pages
list their models from here and the config checks a model against its task:
adding a model is one file with a `build` function and one register_model line
here (a preset is welcome, but the page works without one). The line names the
Model fields the model reads (`settings`), and its page draws a widget for each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ganlab.config import ACTIVATIONS
from ganlab.models import autoencoder, cgan, dcgan, maxout, mlp1d, mlp2d, mlp_mnist


@dataclass(frozen=True)
class Setting:
    """A Model field that a page lets one change, and what the page calls it."""
    field: str
    label: str
    step: float = 1             # a number's +/- step (a text field has none)
    help: str | None = None


MLP = (Setting("g_hidden", "G width", 8), Setting("g_depth", "G hidden layers"),
       Setting("g_activation", "G activation(s)",
               help="one of " + ", ".join(ACTIVATIONS) + ", or one per hidden layer"),
       Setting("d_hidden", "D width", 8), Setting("d_depth", "D hidden layers"),
       Setting("d_activation", "D activation(s)"))
G_DROPOUT, D_DROPOUT = Setting("g_dropout", "G dropout", 0.05), Setting("dropout", "D dropout", 0.05)
MLP_DROPOUT = MLP[:3] + (G_DROPOUT,) + MLP[3:] + (D_DROPOUT,)   # G's four, then D's four
DCGAN = (Setting("g_hidden", "G channels", 8, help="at 14×14; the 7×7 layer has twice as many"),
         Setting("g_refine", "G 3×3 layers per scale", help="added at 7×7 and again at 14×14"),
         Setting("d_hidden", "D channels", 8, help="at 14×14; each later layer has twice as many"),
         Setting("d_depth", "D strided convolutions", help="2 (28×28 to 7×7), or 3 (on to 4×4)"),
         D_DROPOUT)
MAXOUT = MLP[:3] + (G_DROPOUT, Setting("d_hidden", "D maxout units", 8), Setting("d_depth", "D hidden layers"),
                    Setting("maxout_k", "pieces per unit"), D_DROPOUT)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str                   # the task it learns: a name in ganlab.tasks.TASKS
    label: str                  # what a model picker shows
    build: Callable             # build(cfg) -> (G, D); an autoencoder's -> the one model
    conditional: bool = False   # G and D take the digit label: the task feeds them labels
    settings: tuple[Setting, ...] = ()   # the Model fields build() reads that its page shows


MODELS: dict[str, ModelSpec] = {}   # the GANs
AUTOENCODERS: dict[str, ModelSpec] = {}   # not GANs: one network that reconstructs its input (seed 002)


def register_model(spec: ModelSpec, registry: dict[str, ModelSpec] = MODELS) -> ModelSpec:
    """Add a model to the registry (the GANs', unless told another); a name is taken once."""
    if spec.name in MODELS or spec.name in AUTOENCODERS:
        raise ValueError(f"a model named {spec.name!r} is registered already")
    registry[spec.name] = spec
    return spec


register_model(ModelSpec("mlp1d", "gauss1d", "MLP", mlp1d.build, settings=MLP))
register_model(ModelSpec("mlp2d", "toy2d", "MLP", mlp2d.build, settings=MLP))
register_model(ModelSpec("mlp", "mnist", "MLP GAN (seed 003)", mlp_mnist.build, settings=MLP_DROPOUT))
register_model(ModelSpec("maxout", "mnist", "Maxout GAN, Goodfellow 2014 (seed 004)", maxout.build, settings=MAXOUT))
register_model(ModelSpec("dcgan", "mnist", "DCGAN (seed 001)", dcgan.build, settings=DCGAN))
register_model(ModelSpec("cgan", "mnist", "Conditional GAN (seed 001)", cgan.build, conditional=True,
                         settings=MLP_DROPOUT))
# ganlab/autoencoders.py trains these; their decoder serves as G.
register_model(ModelSpec("ae", "mnist", "Autoencoder (seed 002)", autoencoder.build_ae), AUTOENCODERS)
register_model(ModelSpec("vae", "mnist", "Variational autoencoder (seed 002)", autoencoder.build_vae), AUTOENCODERS)


def model_spec(name: str) -> ModelSpec:
    """A GAN's or an autoencoder's spec; KeyError for a name neither registry knows."""
    return MODELS[name] if name in MODELS else AUTOENCODERS[name]


def models_for(task: str) -> list[ModelSpec]:
    """The GANs that learn `task`, in the order they were registered."""
    return [spec for spec in MODELS.values() if spec.task == task]


def is_conditional(name: str) -> bool:
    """Whether the model's G and D take the digit label. Asked of the specs each time, never
    kept in a set, so a model registered later is answered for too."""
    return name in MODELS and MODELS[name].conditional


def build_models(cfg):
    return MODELS[cfg.model.name].build(cfg)
