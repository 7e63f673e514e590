"""Quality meters: how close the generated samples are to the target.

Loss curves alone mislead, so these compare samples with ground truth.
"""
from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.spatial import distance


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


# -- 1D mixtures: which modes did G find? ------------------------------------------------

def mixture_modes(samples: np.ndarray, means, stds, weights) -> tuple[np.ndarray, int]:
    """Per-mode share of the samples, and how many modes are covered.

    Following PacGAN, a sample belongs to its nearest mode (in units of that
    mode's std) when it lies within 3 std of it; samples further out belong
    to none. A mode is covered when its share is at least half of what the
    target gives it (its weight), so a mode that G only grazes does not count.
    """
    samples = np.asarray(samples, dtype=np.float64).ravel()
    means, stds, weights = (np.asarray(v, dtype=np.float64) for v in (means, stds, weights))
    z = np.abs(samples[:, None] - means[None, :]) / stds[None, :]   # [n, K]
    nearest = z.argmin(axis=1)
    close = z[np.arange(len(samples)), nearest] <= 3.0
    shares = np.bincount(nearest[close], minlength=len(means)) / max(len(samples), 1)
    expected = weights / weights.sum()
    return shares, int(np.sum(shares >= 0.5 * expected))


# -- MNIST: meters over the classifier's predictions and features ------------------------

MIN_DIGIT_SHARE = 0.025   # 1/4 of the uniform 10%: real digits never drop this low (their share at
                          # N=1000 varies by ~1%), while a collapsed G's misclassified strays stay below


def digit_histogram(pred_labels: np.ndarray) -> np.ndarray:
    """The fraction of all samples read as each digit: float [10].

    Labels outside 0-9 (the classifier's "not a digit") count in the total but
    in no bar, so the bars sum to the share of samples that are digits at all.
    """
    pred_labels = np.asarray(pred_labels, dtype=np.int64).ravel()
    return np.bincount(pred_labels, minlength=11)[:10] / max(len(pred_labels), 1)


def modes_covered(hist: np.ndarray, min_share: float = MIN_DIGIT_SHARE) -> int:
    """How many digits G draws: those with at least `min_share` of the samples."""
    return int(np.sum(np.asarray(hist) >= min_share))


def kl_to_uniform(hist: np.ndarray) -> float:
    """KL(hist || uniform) in nats: 0 for balanced digits, ln 10 = 2.30 when all are one digit.

    The histogram is renormalised over the digits it holds; with no digit at all it is NaN.
    """
    p = np.asarray(hist, dtype=np.float64)
    if not p.sum() > 0:
        return float("nan")
    p = p / p.sum()
    nz = p > 0   # 0 log 0 = 0
    return float(np.sum(p[nz] * np.log(p[nz] * len(p))))


def label_accuracy(pred: np.ndarray, requested: np.ndarray) -> float:
    """CGAN: the fraction of samples the classifier reads as the digit G was asked for (chance: 0.1)."""
    return float(np.mean(np.asarray(pred).ravel() == np.asarray(requested).ravel()))


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features [N, F], in float64 (float32 loses the small eigenvalues)."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need features shaped [N >= 2, F], got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def frechet_distance_from_stats(mu1, cov1, mu2, cov2) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)): the Fréchet distance of two Gaussians.

    tr (C1 C2)^(1/2) is computed as the sum of square roots of the eigenvalues
    of C1^(1/2) C2 C1^(1/2), which has the same eigenvalues as C1 C2 but is
    symmetric, so eigh is exact where sqrtm would wander into complex numbers
    on near-singular covariances. Tiny negative eigenvalues are rounding; they are clipped to 0.
    """
    w, v = np.linalg.eigh(cov1)
    sqrt_c1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = sqrt_c1 @ cov2 @ sqrt_c1
    middle = (middle + middle.T) / 2
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0, None)))
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt, 0.0))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between two feature sets [N, F]: FID when the features come from a classifier.

    Its value depends on the feature extractor and on N, so compare only
    numbers from the same classifier at the same N.
    """
    return frechet_distance_from_stats(*feature_stats(feats_a), *feature_stats(feats_b))


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance between all pairs of rows of x [N, D]: how varied a batch is.

    Divided by the same for real data it gives the `diversity` meter: near 1
    for real-looking variety, near 0 when G draws the same image for every z.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(x) < 2:
        return float("nan")
    sq = np.sum(x * x, axis=1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)   # |a-b|^2 = |a|^2 + |b|^2 - 2ab
    n = len(x)
    return float(np.sqrt(d2).sum() / (n * (n - 1)))   # the diagonal is 0; each pair counted twice


# -- 2D toys: which modes did G find, how many samples are good, how far off is the rest? ------

HIGH_QUALITY_STDS = 3.0   # PacGAN: a sample within 3 std of its nearest mode is high quality
MODE_SHARE_2D = 0.1       # a mode is covered once it holds a tenth of its fair share of high-quality samples


def nearest_mode(points: np.ndarray, centers: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest mode (index into centers) and its distance from it, in stds."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    centers = np.asarray(centers, dtype=np.float64)
    d = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2)   # [n, K]
    nearest = d.argmin(axis=1)
    return nearest, d[np.arange(len(points)), nearest] / std


def mode_coverage(nearest: np.ndarray, stds_away: np.ndarray, num_modes: int,
                  min_share: float = MODE_SHARE_2D) -> tuple[int, float, np.ndarray]:
    """(modes covered, share of high-quality samples, each mode's share of all samples).

    A sample is high quality within HIGH_QUALITY_STDS of its nearest mode
    (PacGAN). PacGAN counts a mode as captured with a single such sample; with
    thousands of samples a few strays land in a mode by chance, so here a mode
    counts once it holds `min_share` of its fair share (n / K) of them.
    """
    n = max(len(nearest), 1)
    good = np.asarray(stds_away) <= HIGH_QUALITY_STDS
    shares = np.bincount(np.asarray(nearest)[good], minlength=num_modes)[:num_modes] / n
    return int(np.sum(shares >= min_share / num_modes)), float(good.mean()) if len(good) else 0.0, shares


def modes_captured(nearest: np.ndarray, stds_away: np.ndarray, num_modes: int) -> int:
    """Modes with at least one high-quality sample: PacGAN's own rule, for comparing with papers.

    Laxer than mode_coverage's count (one stray sample captures a mode), and
    like any count of "at least one" it grows with the number of samples:
    the papers count 2,500 samples, the 2D lab's probe 2,000.
    """
    good = np.asarray(stds_away) <= HIGH_QUALITY_STDS
    return int(len(np.unique(np.asarray(nearest)[good])))


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The energy distance 2 E|A-B| - E|A-A'| - E|B-B'| between two point sets [n, d].

    Zero only when the distributions are equal, and in the data's own units,
    so it reads like a distance on any target. The unbiased estimate used here
    can dip just below zero on two samples of one distribution; the distance
    itself cannot, so it is floored at 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    cross = distance.cdist(a, b).mean()
    return float(max(2 * cross - mean_pairwise_distance(a) - mean_pairwise_distance(b), 0.0))
