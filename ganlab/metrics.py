"""Quality meters: how close the generated samples are to the target.

Loss curves alone mislead, so these compare samples with ground truth.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def w1_to_target(samples: np.ndarray, target_quantiles: np.ndarray) -> float:
    """Wasserstein-1 distance between samples and a target given by its quantiles."""
    return float(stats.wasserstein_distance(samples, target_quantiles))


def ks_to_target(samples: np.ndarray, target_cdf) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the two CDFs."""
    return float(stats.kstest(samples, target_cdf).statistic)


def js_divergence_bits(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two histograms on the same bins."""
    p = p_counts / max(p_counts.sum(), 1e-12)
    q = q_counts / max(q_counts.sum(), 1e-12)
    m = 0.5 * (p + q)
    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """D*(x) = p_data / (p_data + p_g); undefined (NaN) where both are 0."""
    total = p_data + p_g
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p_data / np.where(total > 0, total, 1), np.nan)
