"""DCGAN for 28x28 digits, after pytorch/examples/dcgan (seed 001).

Strided (transposed) convolutions do all the resizing: no pooling and no fully
connected layers. G: z as a 1x1 image -> 7x7 -> 14x14 -> 28x28. D mirrors it:
28x28 -> 14x14 -> 7x7 -> one score. BatchNorm in G, and in D except on its
first layer; LeakyReLU(0.2) in D; weights N(0, 0.02), BatchNorm gamma N(1, 0.02).

cfg.model.g_hidden and d_hidden are the channel counts at 14x14 (the 7x7
layer has twice as many). 64 is the pytorch/examples width; 32 trains 2.3
times faster on a 2-core CPU (750 against 320 images/s) and still draws clear
digits.

cfg.model.g_refine adds that many 3x3 convolutions (each with BatchNorm and
ReLU) to G at 7x7 and again at 14x14, before each upsampling. pytorch/examples
has none: its G upsamples at every layer, so a stroke's shape is settled by
the one transposed convolution that draws it. The extra layers let G look at
the whole digit again before it draws finer. On MNIST one each lowered the
Fréchet distance but not the share of clearly read digits, at 1.5 times the
time a step (mnist-dcgan's note), so no preset uses them yet.

cfg.model.d_depth is the number of D's strided convolutions: 2, as in
pytorch/examples (28x28 -> 14x14 -> 7x7), or 3, which goes on to 4x4 with
four times the width before the score. On MNIST the third layer raised the
share of clearly read digits (mnist-dcgan's note): a D that sees the whole
digit in one more nonlinear layer tells G more about a stroke's overall shape.

cfg.model.dropout, when above 0, drops D's activations after each of its
hidden layers (the TensorFlow DCGAN tutorial's MNIST D uses 0.3): a D that
cannot lean on single features overfits the real digits less.

With the gradient penalty (WGAN-GP) the critic has no BatchNorm: the penalty
asks for the gradient of each sample's score with respect to that sample,
which BatchNorm muddles by mixing the samples of a batch. The WGAN-GP paper
drops it for this reason, and its official MNIST code uses no normalization.
"""
from __future__ import annotations

from torch import Tensor, nn

from ganlab.losses import LOSSES
from ganlab.models.layers import Dropout


def _refine(channels: int, n: int) -> list[nn.Module]:
    """n 3x3 convolutions that keep the size: G's extra layers at one scale."""
    layers: list[nn.Module] = []
    for _ in range(n):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
    return layers


class Generator(nn.Module):
    def __init__(self, noise_dim: int, width: int, refine: int = 0):
        super().__init__()
        # With refine 0 this is pytorch/examples' G, with the same layer indices (net.3.weight)
        # that runs saved before g_refine existed carry.
        self.net = nn.Sequential(
            nn.ConvTranspose2d(noise_dim, 2 * width, 7, 1, 0, bias=False),   # 1x1 -> 7x7
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            *_refine(2 * width, refine),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),       # -> 14x14
            nn.BatchNorm2d(width),
            nn.ReLU(),
            *_refine(width, refine),
            nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False),               # -> 28x28
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z[:, :, None, None])                   # (B, 1, 28, 28)


def _activation(leaky_slope: float, dropout: float) -> nn.Module:
    # Dropout sits inside the activation's slot, so the layers' indices, and with them the
    # names of saved weights (net.2.weight), are the same with dropout or without.
    act = nn.LeakyReLU(leaky_slope)
    return nn.Sequential(act, Dropout(dropout)) if dropout > 0 else act


class Discriminator(nn.Module):
    def __init__(self, width: int, leaky_slope: float = 0.2, batchnorm: bool = True, dropout: float = 0.0,
                 depth: int = 2):
        super().__init__()

        def down(c_in: int, c_out: int, kernel: int) -> list[nn.Module]:
            # A conv followed by BatchNorm needs no bias: BatchNorm's beta replaces it.
            return [nn.Conv2d(c_in, c_out, kernel, 2, 1, bias=not batchnorm),
                    nn.BatchNorm2d(c_out) if batchnorm else nn.Identity(),
                    _activation(leaky_slope, dropout)]

        # Depth 2 is pytorch/examples' D, with the weight names (net.2, net.3, net.5) that runs
        # saved before d_depth existed carry.
        layers = [nn.Conv2d(1, width, 4, 2, 1), _activation(leaky_slope, dropout)]   # 28x28 -> 14x14, no BatchNorm
        layers += down(width, 2 * width, 4)                                         # -> 7x7
        if depth == 3:
            layers += down(2 * width, 4 * width, 3)                                 # -> 4x4
        channels, size = (2 * width, 7) if depth == 2 else (4 * width, 4)
        layers.append(nn.Conv2d(channels, 1, size, 1, 0))                           # -> 1x1: the score
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x).flatten()                           # (B,) logits or critic values


def dcgan_init(module: nn.Module) -> None:
    """pytorch/examples' init; the narrow weights keep early training gentle."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(cfg) -> tuple[nn.Module, nn.Module]:
    m = cfg.model
    # G is built and initialised first, so its starting weights are the same
    # whichever critic (with or without BatchNorm) the loss asks for.
    G = Generator(cfg.noise.dim, m.g_hidden, m.g_refine)
    G.apply(dcgan_init)
    # A gradient penalty (GP or R1) is per sample, and BatchNorm would mix the samples'
    # gradients, so a penalised D goes without it (as in WGAN-GP's and R1's papers).
    D = Discriminator(m.d_hidden, m.leaky_slope, batchnorm=LOSSES[cfg.loss.name].penalty is None,
                      dropout=m.dropout, depth=m.d_depth)
    D.apply(dcgan_init)
    return G, D
