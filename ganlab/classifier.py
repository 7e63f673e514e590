"""A small MNIST classifier: the ruler for the MNIST quality meters.

A GAN's losses say little about its samples, so ganlab asks a classifier
instead: which digits does G draw (modes covered, KL to uniform), how far are
its samples from real ones in the classifier's feature space (a Fréchet
distance), and, for a conditional GAN, does G draw the digit it was asked for.

The classifier is trained once on whatever MNIST the data folder holds and
cached next to it, at DATA/ganlab/mnist-classifier.pt (or, when the data
folder is read-only, in the user's cache folder: see cache_path). The cache
records which data it was trained on, so other data trains a new one; a
corrupt or foreign cache file is replaced, never fatal.

Training it takes 20 s of one core's time, minutes on a shared CPU, so it runs on a thread of its
own (ClassifierJob) and a run never waits for it: a task holds
MetersWhenReady, whose meters read NaN until the classifier is there.

    self.meters = MetersWhenReady(root, device)          # starts loading or training the classifier
    meters = self.meters(G(self.meter_z))                # each probe: exactly REFERENCE_N images
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab import metrics, stopping
from ganlab.data.mnist import data_root, load_mnist, to_training_tensor

log = logging.getLogger(__name__)

CACHE_NAME = "mnist-classifier.pt"
CACHE_FORMAT = "ganlab-mnist-classifier/2"   # bump when the network or the recipe changes
HOLDOUT_FRACTION = 0.2   # a fixed 20% never trained on: it measures accuracy and is the FID reference
SPLIT_SEED = 0
EPOCHS = 8               # 98.4% held-out by argmax, 96% read with p >= 0.9; ~15 s on 2 idle CPU cores
BATCH_SIZE = 64
LR = 2e-3                # the peak of a one-cycle schedule: 3 epochs at a flat 1e-3 gave only ~97.2%
REFERENCE_N = 1000       # FID grows as N shrinks, so it is only comparable at one fixed N
JUNK = 10                # the 11th class: "not a digit" (noise, blobs, shuffled pixels, blank)
JUNK_PER_BATCH = 16      # fresh junk images beside each batch of 64 real digits
CONFIDENCE = 0.9         # a sample counts as a digit only when the classifier gives that digit
                         # at least this probability (real held-out digits: 96% clear it)

Progress = Callable[[float, str], None]


class MnistClassifier(nn.Module):
    """Two conv blocks and two linear layers; the 128 features before the last layer feed the FID.

    Small on purpose: it must train in seconds on a laptop CPU, and MNIST needs
    no more. Inputs are float images [N, 1, 28, 28] in [-1, 1], the scale
    ganlab trains GANs on.
    """
    num_features = 128

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 16 x 14 x 14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 7 x 7
        )
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, self.num_features), nn.ReLU())
        self.head = nn.Linear(self.num_features, 11)   # digits 0-9, then JUNK
        self.accuracy = float("nan")   # on the held-out images; set after training or loading
        self.source = ""               # "trained" or "cache"
        self.note = ""                 # why it was (re)trained, when it was

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.hidden(self.conv(x)))

    @torch.no_grad()
    def classify(self, images: Tensor, chunk: int = 1000) -> tuple[Tensor, Tensor]:
        """(digits int64 [N], features float32 [N, num_features]), both on the CPU, in one pass.

        A digit is the class read with at least CONFIDENCE probability; any
        other image, junk or unsure, is JUNK. Chunks bound the memory used on
        big batches. The network stays in eval mode once published, so many
        threads may call this at once.
        """
        device = next(self.parameters()).device
        digits, feats = [], []
        for x in images.split(chunk):
            x = x.to(device, torch.float32).contiguous(memory_format=torch.channels_last)
            f = self.hidden(self.conv(x))
            p, d = self.head(f).softmax(1).max(1)
            digits.append(torch.where(p >= CONFIDENCE, d, JUNK).cpu())
            feats.append(f.cpu())
        return torch.cat(digits), torch.cat(feats)

    def predict(self, images: Tensor) -> Tensor:
        """Each image's digit when the classifier is confident of it, else JUNK: int64 [N] on the CPU."""
        return self.classify(images)[0]

    def features(self, images: Tensor) -> Tensor:
        """The penultimate layer's activations: float32 [N, num_features] on the CPU."""
        return self.classify(images)[1]


def split_indices(n_images: int) -> tuple[Tensor, Tensor]:
    """A fixed (train, held-out) split of n images: the same every time for the same n.

    reference_images() draws from the held-out part, so the FID compares G's
    samples with real digits the classifier has not memorised.
    """
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_held = int(round(n_images * HOLDOUT_FRACTION))
    return order[n_held:], order[:n_held]


def data_key(images: Tensor, labels: Tensor) -> str:
    """Names the data set: its size and a hash of its bytes (a few ms for 10k images)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(images.contiguous().numpy().tobytes())
    h.update(labels.contiguous().numpy().tobytes())
    return f"{len(images)}:{h.hexdigest()}"


def _init_weights(model: nn.Module, gen: torch.Generator) -> None:
    # He init from our own generator: reproducible, and it leaves alone the
    # global RNG that training threads may be using at the same moment.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=gen)
            nn.init.zeros_(m.bias)


def junk_images(n: int, gen: torch.Generator, digits: Tensor) -> Tensor:
    """n images that are not digits, float [n, 1, 28, 28] in [-1, 1], an equal mix of five kinds.

    The kinds are what an untrained or broken G draws: uniform noise, sparse
    speckle, smooth blobs (5x5 noise upsampled), real digits with
    their pixels shuffled (a digit's ink with no shape), and blank images of
    one grey level. `digits`: real training images in [-1, 1], for shuffling.
    """
    kind = torch.arange(n) % 5
    u = torch.rand(n, 1, 28, 28, generator=gen)
    out = u * 2 - 1                                                                  # 0: uniform noise
    speckle = torch.where(u < torch.rand(n, 1, 1, 1, generator=gen) * 0.4, 1.0, -1.0)
    blobs = F.interpolate(torch.rand(n, 1, 5, 5, generator=gen), size=(28, 28), mode="bilinear")
    blobs = ((blobs - blobs.amin((2, 3), keepdim=True)) * 2.5 - 1).clamp(-1, 1)
    picks = digits[torch.randint(len(digits), (n,), generator=gen)].flatten(1)
    shuffled = picks.gather(1, torch.argsort(torch.rand(n, 784, generator=gen), dim=1)).view(n, 1, 28, 28)
    blank = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1).expand(n, 1, 28, 28)
    for k, images in enumerate((speckle, blobs, shuffled, blank), start=1):
        out[kind == k] = images[kind == k].to(out.dtype)
    return out


def train_classifier(images: Tensor, labels: Tensor, device="cpu", progress: Progress | None = None,
                     epochs: int | None = None) -> MnistClassifier:
    """Train on the fixed training part of (uint8 images [N, 28, 28], labels [N]); score the rest."""
    epochs = epochs or EPOCHS
    device = torch.device(device)
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    train_idx, held_idx = split_indices(len(images))
    x = to_training_tensor(images, device)
    y = labels.to(device)
    model = MnistClassifier()
    _init_weights(model, gen)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches_per_epoch = -(-len(train_idx) // BATCH_SIZE)
    # One cycle: the rate warms up, then anneals to ~0, which settles the
    # weights and gains over a point of accuracy in a budget of a few epochs.
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=epochs * batches_per_epoch)
    junk_label = torch.full((JUNK_PER_BATCH,), JUNK, device=device)
    train_x = x[train_idx.to(device)].cpu()
    for epoch in range(epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=gen)].to(device)
        for b, i in enumerate(order.split(BATCH_SIZE)):
            stopping.check("stopped while the meters' classifier was trained")   # a minute on a CPU
            # Beside every batch of digits, fresh junk labelled "not a digit", so the meters
            # read noise, blobs and blank images as what they are instead of as some digit.
            junk = junk_images(JUNK_PER_BATCH, gen, train_x).to(device)
            loss = F.cross_entropy(model(torch.cat([x[i], junk])), torch.cat([y[i], junk_label]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            if progress and b % 20 == 0:
                done = (epoch + b / batches_per_epoch) / epochs
                progress(done, f"training the MNIST classifier: epoch {epoch + 1} of {epochs}")
    model.eval()
    held = held_idx.to(device)
    model.accuracy = float((model.predict(x[held]) == labels[held_idx]).float().mean())
    model.source = "trained"
    if progress:
        progress(1.0, f"MNIST classifier trained: {model.accuracy:.1%} on {len(held_idx)} held-out digits")
    return model


def _load_cache(path: Path, key: str, device) -> tuple[MnistClassifier | None, str]:
    """(model, "") from a valid cache file, or (None, why it cannot be used)."""
    if not path.is_file():
        return None, f"no cached classifier at {path}"
    try:
        # weights_only: a cache file is data, and must never be able to run code.
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt files fail in many ways; all mean "retrain"
        return None, f"cached classifier {path} is unreadable ({type(e).__name__}: {e}); retraining"
    if not isinstance(saved, dict) or saved.get("format") != CACHE_FORMAT:
        return None, f"{path} is not a {CACHE_FORMAT} file; retraining"
    if saved.get("data_key") != key:
        return None, f"cached classifier {path} was trained on other data; retraining"
    model = MnistClassifier()
    try:
        model.load_state_dict(saved["state_dict"])
    except (KeyError, RuntimeError, TypeError, AttributeError) as e:
        return None, f"cached classifier {path} does not fit the network ({e}); retraining"
    model.accuracy = float(saved.get("accuracy", float("nan")))
    model.source = "cache"
    return model.to(device).eval(), ""


def _save_cache(model: MnistClassifier, path: Path, key: str) -> None:
    """Write atomically (temp file, then rename), so a crash never leaves half a file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    saved = {"format": CACHE_FORMAT, "data_key": key, "accuracy": model.accuracy, "state_dict": state}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(saved, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, RuntimeError) as e:   # RuntimeError: torch.save on a full disk
        # A read-only data folder costs a retrain next start, nothing more.
        log.warning("could not cache the MNIST classifier at %s: %s", path, e)


def default_cache_dir(root: Path) -> Path:
    """DATA/ganlab beside the data; a read-only data folder (a shared one) caches per user instead."""
    if os.access(root, os.W_OK):
        return root / "ganlab"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganlab"


def cache_path(root: Path | str | None = None, cache_dir: Path | str | None = None) -> Path:
    """Where the classifier for the MNIST under root is cached (cache_dir overrides the default)."""
    root = Path(root) if root is not None else data_root()
    return Path(cache_dir if cache_dir is not None else default_cache_dir(root)) / CACHE_NAME


def load_or_train(root: Path | str | None = None, device="cpu", progress: Progress | None = None,
                  cache_dir: Path | str | None = None) -> MnistClassifier:
    """The classifier for the MNIST under `root`: from the disk cache if it fits, else trained and cached.

    A read-only data folder may hold a cache that its owner wrote (DATA/ganlab): it is read
    when it fits, and a new one goes to the user's cache folder. Raises MnistNotFoundError
    when there is no MNIST under root.
    """
    root = Path(root) if root is not None else data_root()
    path = cache_path(root, cache_dir)
    images, labels = load_mnist(root)
    key = data_key(images, labels)
    shipped = root / "ganlab" / CACHE_NAME
    if cache_dir is None and shipped != path:
        model, _ = _load_cache(shipped, key, device)
        if model is not None:
            return model
    model, why = _load_cache(path, key, device)
    if model is not None:
        return model
    log.info("%s", why)
    start = time.perf_counter()
    model = train_classifier(images, labels, device, progress)
    model.note = why
    log.info("trained the MNIST classifier in %.1f s: %.2f%% held-out accuracy",
             time.perf_counter() - start, 100 * model.accuracy)
    _save_cache(model, path, key)
    return model


class ClassifierJob:
    """Loads or trains one classifier on a thread of its own, so that no run waits for it.

    `model` is None until it is ready; `progress` says how far training has got, and
    `error` why it failed. One job per data folder, cache and device (classifier_job).
    """

    def __init__(self, root: Path, device, cache_dir: Path | str | None):
        self.root, self.device, self.cache_dir = root, device, cache_dir
        self.path = cache_path(root, cache_dir)
        self.model: MnistClassifier | None = None
        self.progress: tuple[float, str] = (0.0, "looking for its cache")
        self.error: BaseException | None = None
        self.started = time.time()
        self.seconds = float("nan")            # how long loading or training took, once done
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._main, name="ganlab-mnist-classifier", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        # At the training threads' priority, with half the cores: the runs it serves come first.
        from ganlab.worker import _yield_to_the_pages
        _yield_to_the_pages()
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        try:
            with stopping.stoppable(_shutting_down.is_set):
                model = load_or_train(self.root, self.device, self._progress, self.cache_dir)
            # Channels-last halves the conv and pooling time on a CPU, and the meters run
            # at every snapshot of an MNIST run. Set once, before any thread shares it.
            self.model = model.to(memory_format=torch.channels_last)
        except BaseException as e:  # noqa: BLE001 - kept for whoever waits, and shown on the page
            if not isinstance(e, stopping.Stopped):
                log.exception("the MNIST classifier could not be made")
            self.error = e
        finally:
            self.seconds = time.time() - self.started
            self.done.set()

    def _progress(self, fraction: float, text: str) -> None:
        self.progress = (fraction, text)

    @property
    def failed(self) -> bool:
        return self.done.is_set() and self.model is None

    def state(self) -> dict:
        """Where the job stands, as plain values a page can show (a run's views["classifier"])."""
        if self.failed:
            from ganlab.worker import describe_error
            return {"ready": False, "failed": describe_error(self.error), "path": str(self.path)}
        fraction, words = self.progress
        return {"ready": self.model is not None, "failed": "", "fraction": float(fraction), "words": words,
                "path": str(self.path)}

    def wait(self, timeout: float | None = None) -> MnistClassifier:
        """The classifier, once ready; re-raises why it could not be made."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"the MNIST classifier was not ready within {timeout} s")
        if self.model is None:
            raise self.error
        return self.model


_jobs: dict[tuple, ClassifierJob] = {}
_lock = threading.Lock()
_shutting_down = threading.Event()


@atexit.register
def _stop_jobs() -> None:
    # A daemon thread killed mid-op at interpreter exit can abort the process inside torch.
    _shutting_down.set()
    for job in list(_jobs.values()):
        job.done.wait(10)


def classifier_job(root: Path | str | None = None, device="cpu",
                   cache_dir: Path | str | None = None) -> ClassifierJob:
    """The job making the classifier for this data folder and device: started by the first
    caller, shared by every run in this process; a failed one is started again."""
    root = Path(root) if root is not None else data_root()
    key = (str(root.resolve()), str(cache_dir), str(torch.device(device)))
    with _lock:
        job = _jobs.get(key)
        if job is None or job.failed:
            job = _jobs[key] = ClassifierJob(root, device, cache_dir)
        return job


def get_classifier(root: Path | str | None = None, device="cpu",
                   cache_dir: Path | str | None = None) -> MnistClassifier:
    """The classifier, shared by every run in this process; waits until it is ready.

    Thread-safe: when several threads ask at once, one job trains (or loads) it and the
    others wait for that one instead of training their own.
    """
    return classifier_job(root, device, cache_dir).wait()


def reference_images(root: Path | str | None = None, n: int = REFERENCE_N, device="cpu") -> Tensor:
    """n real digits the classifier never trained on, as float [n, 1, 28, 28] in [-1, 1].

    The same images every time for the same data, so meters from different runs compare.
    """
    images, _ = load_mnist(root)
    _, held_idx = split_indices(len(images))
    if len(held_idx) < n:
        raise ValueError(f"the meters need {n} held-out real digits; {root or data_root()} has only "
                         f"{len(images)} images ({len(held_idx)} held out)")
    return to_training_tensor(images[held_idx[:n]], device)


class MnistMeters:
    """The MNIST quality meters, against a fixed set of real images.

    The real side (feature statistics and diversity of the reference images)
    is computed once here. Each call takes exactly as many generated images as
    there are reference images and returns
    {"fid", "modes_covered", "confident", "kl_uniform", "diversity", "hist_0".."hist_9"},
    plus "label_accuracy" when the requested labels are given (CGAN).

    Only confident samples count as digits (see MnistClassifier.classify):
    `confident` is their share, hist_d the share of all samples read as d,
    and a digit is covered when hist_d reaches MIN_DIGIT_SHARE. Noise, blobs
    and blank images therefore cover no digit at all.
    """

    def __init__(self, classifier: MnistClassifier, reference: Tensor, root: Path | str | None = None):
        """reference: real images, float [N, 1, 28, 28] in [-1, 1]; see reference_images().
        root: the MNIST folder they came from, for calibrate()."""
        self.classifier = classifier
        self.root = root
        self.n = len(reference)
        self.real_stats = metrics.feature_stats(classifier.features(reference).double().numpy())
        self.real_diversity = metrics.mean_pairwise_distance(_flat(reference))

    @classmethod
    def for_data(cls, root: Path | str | None = None, device="cpu", n: int = REFERENCE_N) -> "MnistMeters":
        """The shared classifier (waiting for it) and n held-out reference digits for the MNIST under root."""
        return cls(get_classifier(root, device), reference_images(root, n, device), root)

    def __call__(self, fake_images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
        """Meters for generated images [N, 1, 28, 28] in [-1, 1] (and the labels G was asked for)."""
        if len(fake_images) != self.n:
            raise ValueError(f"the Fréchet distance depends on the number of samples: pass exactly "
                             f"{self.n} generated images (got {len(fake_images)})")
        if not torch.isfinite(fake_images).all():
            return unmeasured(labels is not None)
        pred, feats = self.classifier.classify(fake_images)
        pred = pred.numpy()
        hist = metrics.digit_histogram(pred)
        out = {
            "fid": metrics.frechet_distance_from_stats(*metrics.feature_stats(feats.double().numpy()),
                                                       *self.real_stats),
            "modes_covered": float(metrics.modes_covered(hist)),
            "confident": float(hist.sum()),
            "kl_uniform": metrics.kl_to_uniform(hist),
            "diversity": metrics.mean_pairwise_distance(_flat(fake_images)) / self.real_diversity,
        }
        out.update({f"hist_{d}": float(hist[d]) for d in range(10)})
        if labels is not None:
            out["label_accuracy"] = metrics.label_accuracy(pred, labels.cpu().numpy())
        return out


def unmeasured(conditional: bool = False) -> dict[str, float]:
    """Every meter MnistMeters reads, as NaN: what a probe records when there is nothing to measure."""
    names = ["fid", "modes_covered", "confident", "kl_uniform", "diversity"] + [f"hist_{d}" for d in range(10)]
    return dict.fromkeys(names + (["label_accuracy"] if conditional else []), float("nan"))


class MetersWhenReady:
    """MnistMeters as soon as the classifier is ready, and NaN meters until then.

    A run probes from its first step (its sample grid shows at once) while the
    classifier loads or trains on its own thread; the meters' columns exist from
    the first probe, so a run's history keeps them when they fill in.
    """

    def __init__(self, root: Path | str | None = None, device="cpu", n: int = REFERENCE_N):
        self.root, self.device, self.n = root, device, n
        self.job = classifier_job(root, device)
        self._meters: MnistMeters | None = None

    @property
    def meters(self) -> MnistMeters | None:
        """The meters, once the classifier is ready (None before)."""
        if self._meters is None and self.job.model is not None:
            self._meters = MnistMeters(self.job.model, reference_images(self.root, self.n, self.device), self.root)
        return self._meters

    def wait(self) -> None:
        """Until the classifier is ready (or failed), for a run's last probe: a run that ends
        before the classifier is ready still ends with its meters. A stop point (Stop ends the wait)."""
        while not self.job.done.wait(0.25):
            stopping.check("stopped while waiting for the meters' classifier")

    def __call__(self, fake_images: Tensor, labels: Tensor | None = None) -> dict[str, float]:
        meters = self.meters
        return meters(fake_images, labels) if meters is not None else unmeasured(labels is not None)


CALIBRATION_CASES = {
    "real": "real digits (held out)",
    "shifted": "the same, each moved up to 2 px",
    "one_digit": "one digit only (all 1s)",
    "noise": "uniform noise",
    "blank": "blank (all black)",
}


def calibration_images(root: Path | str | None = None, n: int = REFERENCE_N, seed: int = 1) -> dict[str, Tensor]:
    """What the meters read on known answers, n images per case of CALIBRATION_CASES.

    "real" is the held-out digits after the reference ones (split against
    split: the floor), so a small data folder may give fewer than n. "shifted" is
    those digits each moved by up to 2 px each way: the meters judge placement as
    well as strokes, so a G that places its digits loosely reads lower. "one_digit"
    is a collapse onto the digit 1; noise and blank are junk and must read as no digit.
    """
    images, labels = load_mnist(root)
    _, held_idx = split_indices(len(images))
    gen = torch.Generator().manual_seed(seed)
    real = held_idx[n:2 * n]
    ones = torch.nonzero(labels == 1).ravel()
    ones = ones[torch.randint(len(ones), (n,), generator=gen)]
    held = to_training_tensor(images[real], "cpu") if len(real) == n else None
    return {
        "real": held,
        "shifted": _shifted(held, 2, gen) if held is not None else None,
        "one_digit": to_training_tensor(images[ones], "cpu"),
        "noise": torch.rand(n, 1, 28, 28, generator=gen) * 2 - 1,
        "blank": torch.full((n, 1, 28, 28), -1.0),
    }


def _shifted(images: Tensor, most: int, gen: torch.Generator) -> Tensor:
    """Each image moved by up to `most` px down and across (a roll: MNIST's 4 px black border is what
    wraps round)."""
    moves = torch.randint(-most, most + 1, (len(images), 2), generator=gen).tolist()
    return torch.stack([image.roll((dy, dx), dims=(1, 2)) for image, (dy, dx) in zip(images, moves)])


def calibrate(meters: "MnistMeters") -> dict[str, dict[str, float]]:
    """{case: meters} for each case of CALIBRATION_CASES that the data allows (see calibration_images)."""
    cases = calibration_images(meters.root, meters.n)
    return {case: meters(images) for case, images in cases.items() if images is not None}


def _flat(images: Tensor) -> np.ndarray:
    return images.detach().flatten(1).float().cpu().numpy()
