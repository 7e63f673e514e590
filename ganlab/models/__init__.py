"""Model registry: name -> build(cfg) returning (generator, discriminator).

Every generator is called as G(z, labels) and every discriminator as
D(x, labels), returning one raw score per sample (a logit, or a critic value
for the Wasserstein losses); unconditional models ignore the labels. Adding a
model is one file with a `build` function and one line here.
"""
from __future__ import annotations

from typing import Callable

from ganlab.models import autoencoder, cgan, dcgan, maxout, mlp1d, mlp2d, mlp_mnist

MODELS: dict[str, Callable] = {
    "mlp1d": mlp1d.build,
    "mlp2d": mlp2d.build,          # the 2D toy lab
    "mlp": mlp_mnist.build,        # seed 003
    "maxout": maxout.build,        # seed 004
    "dcgan": dcgan.build,          # seed 001
    "cgan": cgan.build,            # seed 001
}

# Not GANs: one network trained to reconstruct its input (seed 002), name -> build(cfg)
# returning the model. ganlab/autoencoders.py trains them; their decoder serves as G.
AUTOENCODERS: dict[str, Callable] = {
    "ae": autoencoder.build_ae,
    "vae": autoencoder.build_vae,
}

# Models whose D/G take the digit label.
CONDITIONAL = {"cgan"}


def build_models(cfg):
    return MODELS[cfg.model.name](cfg)
