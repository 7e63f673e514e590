"""Export an experiment as one standalone PyTorch training script.

The script is assembled from ganlab's own source, never from a copy: the
model file, models/layers.py, losses.py, the noise, the optimizer and the
training iteration itself (ganlab/iteration.py) come in through `inspect.getsource`, and only the definitions the script uses are
kept (a small dependency walk over each module's top level). So the exported
models and losses cannot drift from the ones the app trains. What is written
here is the glue: the config, the data, and a loop over steps that calls
ganlab's train_iteration as the Trainer does on its plain path (train.fast
off), or, for the autoencoder and the VAE (seed 002), what AutoencoderTrainer does.

The script imports only torch and numpy (and torchvision to download MNIST).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pprint
import re
import textwrap

from ganlab.config import Experiment

# The tasks a GAN script can be written for (names in ganlab.tasks.TASKS), and the config
# sections each one's script carries. Each also has its data glue below (DATA_GLUE).
SECTIONS = {"gauss1d": ("task", "target", "noise", "model", "loss", "opt_g", "opt_d", "train"),
            "mnist": ("task", "noise", "model", "loss", "opt_g", "opt_d", "train")}
TASKS = tuple(SECTIONS)
TRAIN_FIELDS = ("steps", "batch_size", "d_steps", "lr_decay", "seed", "cpu_threads")
# The autoencoders (ganlab/autoencoders.py): one network, one optimizer (opt_g), no decay.
AE_SECTIONS = ("task", "noise", "model", "opt_g", "train")
AE_TRAIN_FIELDS = ("steps", "batch_size", "seed", "cpu_threads")
# Classes that bring methods the script does not need (and their imports, such
# as scipy): only these members are kept.
# A dataclass keeps its fields: Optim comes in for the losses' reference settings, and the
# script needs none of its validation.
PARTIAL = {("ganlab.data.toy1d", "Target"): ("__init__", "sample"), ("ganlab.config", "Optim"): ()}


class ExportError(ValueError):
    """This experiment cannot be exported as a script."""


# -- reading modules -------------------------------------------------------------------------

class _Module:
    """A module's top-level definitions and imports, with the names each one uses."""

    def __init__(self, name: str):
        self.name = name
        module = importlib.import_module(name)
        self.path = f"{name.replace('.', '/')}{'/__init__' if hasattr(module, '__path__') else ''}.py"
        self.source = inspect.getsource(module)
        self.lines = self.source.splitlines()
        tree = ast.parse(self.source)
        self.defs: dict[str, tuple[int, ast.stmt]] = {}      # name -> (order, node)
        self.imports: dict[str, str] = {}                    # bound name -> import line
        self.ganlab: dict[str, tuple[str, str]] = {}         # bound name -> (module, name)
        for order, node in enumerate(tree.body):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    raise ExportError(f"{name} uses a relative import; the export follows absolute ones")
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if node.module.startswith("ganlab"):
                        self.ganlab[bound] = (node.module, alias.name)
                    else:
                        as_ = f" as {alias.asname}" if alias.asname else ""
                        self.imports[bound] = f"from {node.module} import {alias.name}{as_}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("ganlab"):
                        raise ExportError(f"{name} imports {alias.name} as a module; the export cannot inline it")
                    if alias.asname:
                        self.imports[alias.asname] = f"import {alias.name} as {alias.asname}"
                    else:   # `import a.b` binds `a`
                        self.imports[alias.name.split(".")[0]] = f"import {alias.name.split('.')[0]}"
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.defs[node.name] = (order, node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name):
                            self.defs[n.id] = (order, node)

    def members(self, name: str) -> list[ast.stmt]:
        """The statements of a definition the script keeps (a PARTIAL class: some methods)."""
        node = self.defs[name][1]
        keep = PARTIAL.get((self.name, name))
        if keep is None:
            return [node]
        return self._fields(node) + [m for m in node.body if isinstance(m, ast.FunctionDef) and m.name in keep]

    @staticmethod
    def _fields(node: ast.stmt) -> list[ast.stmt]:
        """A class's field declarations (a dataclass's `lr: float = 2e-4`)."""
        return [m for m in node.body if isinstance(m, (ast.AnnAssign, ast.Assign))]

    def render(self, name: str) -> str:
        node = self.defs[name][1]
        keep = PARTIAL.get((self.name, name))
        if keep is None:
            return self._segment(node)
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        head = self.lines[start: node.body[0].lineno - 1]
        fields = self._fields(node)
        kept = (["its fields"] if fields else []) + list(keep)
        doc = f'    """{self.name}.{name}, with only {", ".join(kept)}."""'
        indent = (lambda m: textwrap.indent(textwrap.dedent(self._segment(m)), "    "))
        methods = [indent(m) for m in self.members(name) if isinstance(m, ast.FunctionDef)]
        return "\n".join(head + [doc] + [indent(f) for f in fields] + (["", "\n\n".join(methods)] if methods else []))

    def _segment(self, node: ast.stmt) -> str:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while start > 0 and self.lines[start - 1].lstrip().startswith("#"):   # keep the comment above it
            start -= 1
        return "\n".join(self.lines[start: node.end_lineno])


def _used_names(nodes: list[ast.stmt]) -> set[str]:
    """Names read anywhere in these statements, annotations aside (they are never evaluated)."""
    used: set[str] = set()

    def visit(node):
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    if isinstance(child, ast.Name):
                        used.add(child.id)
                    visit(child)

    for node in nodes:
        visit(node)
    return used


def collect(roots: list[tuple[str, str]]) -> tuple[list[str], str]:
    """The import lines and the source of everything `roots` (module, name) need, dependencies first."""
    modules: dict[str, _Module] = {}
    wanted: dict[str, set[str]] = {}             # module -> the names the script keeps from it
    uses: dict[str, dict[str, None]] = {}         # module -> the modules it takes names from
    imports: dict[str, None] = {}

    def need(module: str, name: str) -> str:
        """Keep `name` as seen from `module`; returns the module that defines it."""
        m = modules.setdefault(module, _Module(module))
        if name in m.ganlab:
            return need(*m.ganlab[name])
        if name not in m.defs:
            raise ExportError(f"{module} has no top-level {name}")
        if name in wanted.setdefault(module, set()):
            return module
        wanted[module].add(name)
        for used in sorted(_used_names(m.members(name)) - {name}):
            if used in m.defs or used in m.ganlab:
                owner = need(module, used)
                if owner != module:
                    uses.setdefault(module, {})[owner] = None
            elif used in m.imports:
                imports[m.imports[used]] = None
        return module

    for root in roots:
        need(*root)
    # Modules after the modules they take names from; each one's definitions in its own order.
    order: list[str] = []

    def visit(module: str) -> None:
        if module not in order:
            order.append(module)          # marks it, against cycles; moved to its place below
            for dep in uses.get(module, {}):
                visit(dep)
            order.remove(module)
            order.append(module)

    for module in wanted:
        visit(module)
    # One definition per name: two modules' `Generator`s in one script would shadow each other.
    owners: dict[str, str] = {}
    for module in order:
        for name in wanted[module]:
            if owners.setdefault(name, module) != module:
                raise ExportError(f"both {owners[name]} and {module} define {name}")
    chunks = []
    for module in order:
        m = modules[module]
        names = sorted(wanted[module], key=lambda n: m.defs[n][0])
        rendered = dict.fromkeys(m.render(n) for n in names)    # an `a = b = ...` line only once
        chunks.append(_rule(f"from {m.path}") + "\n\n" + "\n\n\n".join(rendered))
    return sorted(imports), "\n\n\n".join(chunks)


def _rule(title: str) -> str:
    head = f"# ---- {title} "
    return head + "-" * max(4, 79 - len(head))


# -- the script --------------------------------------------------------------------------------

def check(cfg: Experiment) -> None:
    """Raise ExportError if `cfg` cannot be exported (cheap: reads no source)."""
    _roots(cfg)


def _roots(cfg: Experiment) -> list[tuple[str, str]]:
    from ganlab.families import family_of
    from ganlab.models import MODELS
    from ganlab.tasks import TASKS as ALL_TASKS
    if cfg.task not in TASKS:
        labels = " and the ".join(ALL_TASKS[t].label for t in TASKS)
        raise ExportError(f"the export writes scripts for the tasks of the {labels}, "
                          f"not the {ALL_TASKS[cfg.task].label}'s")
    if family_of(cfg) != "gan":
        return _autoencoder_roots(cfg)
    if cfg.model.name not in MODELS:
        raise ExportError(f"the export writes GAN and autoencoder scripts; {cfg.model.name!r} is neither")
    model_module = MODELS[cfg.model.name].build.__module__
    # The iteration is ganlab's own (ganlab/iteration.py): the script runs the very lines the app trains with.
    roots = [("ganlab.noise", "sample_noise"), ("ganlab.train", "make_optimizer"), ("ganlab.train", "MODEL_STREAM"),
             ("ganlab.models.layers", "use_generator"), (model_module, "build"), ("ganlab.losses", "LOSSES"),
             ("ganlab.iteration", "train_iteration"), ("ganlab.iteration", "train_step"),
             ("ganlab.iteration", "lr_scale"), ("ganlab.iteration", "set_lr")]
    if cfg.task == "gauss1d":
        return roots + [("ganlab.data.toy1d", "Target")]
    return roots + MNIST_ROOTS


# MNIST's loading and the MNIST task's split, so a script trains on the digits ganlab does.
MNIST_ROOTS = [("ganlab.data.mnist", "load_mnist"), ("ganlab.data.mnist", "available_splits"),
               ("ganlab.data.mnist", "to_training_tensor"), ("ganlab.tasks.mnist", "split_held_out")]


def _autoencoder_roots(cfg: Experiment) -> list[tuple[str, str]]:
    build = _autoencoder_build(cfg)
    return [(build.__module__, build.__name__), ("ganlab.train", "make_optimizer")] + MNIST_ROOTS


def _autoencoder_build(cfg: Experiment):
    from ganlab.models import AUTOENCODERS
    return AUTOENCODERS[cfg.model.name].build


def export_script(cfg: Experiment, title: str = "") -> str:
    """A standalone script that trains `cfg` with plain PyTorch."""
    from ganlab.families import family_of
    family = family_of(cfg)
    # The title is a run's name, typed by anyone: inside the script's docstring, a quote or a
    # backslash could end it and turn the rest of the name into code.
    title = re.sub(r"[^\w .,:()·+-]", "", " ".join(str(title).split()))[:80]
    imports, definitions = collect(_roots(cfg))
    sections, train_fields = (SECTIONS[cfg.task], TRAIN_FIELDS) if family == "gan" else (AE_SECTIONS, AE_TRAIN_FIELDS)
    config = {section: values for section, values in cfg.to_dict().items() if section in sections}
    # The rest of Train steers the app (snapshots, history, devices, the data folder on this server).
    config["train"] = {k: v for k, v in config["train"].items() if k in train_fields}
    # The CPU threads ganlab would train this run with (ganlab.train.prepare): the config's, else the
    # task's choice. Left to PyTorch, every core spins an OpenMP worker, and a 1D run went 9 times slower.
    from ganlab.tasks import TASKS as ALL_TASKS
    config["train"]["cpu_threads"] = cfg.train.cpu_threads or ALL_TASKS[cfg.task].task_class().cpu_threads
    if family == "gan":
        head = HEADER.format(kind="A GAN", parts="models, losses and optimizer", title=title or
                             f"{cfg.task}, {cfg.model.name}, {cfg.loss.name}",
                             steps=cfg.train.steps, data=" --data DIR" if cfg.task == "mnist" else "")
        loop = DATA_GLUE[cfg.task] + [NAMESPACE, ARGUMENTS, LOOP]
    else:
        kind = {"ae": "An autoencoder", "vae": "A VAE"}[family]
        head = HEADER.format(kind=kind, parts="model, its losses and the optimizer",
                             title=title or f"{cfg.task}, {cfg.model.name}", steps=cfg.train.steps, data=" --data DIR")
        # The template names the build function itself: `model = build_vae(cfg)` reads better than a lookup.
        loop = [LOAD_MNIST, DATA_AUTOENCODER, NAMESPACE, ARGUMENTS, AE_LOOP.replace("BUILD", _autoencoder_build(cfg).__name__)]
    own = ["import argparse", "import math", "import os", "import sys", "from types import SimpleNamespace"]
    lines = sorted(set(imports + own) - {"from typing import Any"})
    return "\n".join([
        head,
        "from __future__ import annotations\n",
        *lines,
        "",
        "CONFIG = " + pprint.pformat(config, sort_dicts=False, width=100),
        *(_conditional_line() if family == "gan" and cfg.task == "mnist" else []),
        "",
        "",
        definitions,
        "",
        "",
        _rule("the training loop"),
        "".join(loop),
    ])


def _conditional_line() -> list[str]:
    """The MNIST glue asks `cfg.model.name in CONDITIONAL`: the set, written out from the registry."""
    from ganlab.models import MODELS
    names = sorted(name for name, spec in MODELS.items() if spec.conditional)
    return ["", "# The models whose G and D take the digit label (ganlab.models: ModelSpec.conditional).",
            f"CONDITIONAL = {set(names)!r}"]


HEADER = '''#!/usr/bin/env python3
"""{kind} training script exported from ganlab: {title}.

Standalone: it needs only PyTorch and numpy (and torchvision, to download MNIST).
The {parts} below are ganlab's own
code; CONFIG holds the settings of the experiment.

    python3 this_script.py --steps {steps}{data}
"""'''

DATA_1D = '''

def make_data(cfg, args, device):
    """Real samples from the 1D target; no labels."""
    target = Target(cfg.target)

    def sample_real(n, gen):
        return target.sample(n, gen, device), None

    def sample_labels(n, gen):
        return None

    return sample_real, sample_labels


def report(G, cfg, args, device, gen):
    with torch.no_grad():
        fake = G(sample_noise(cfg.noise, 10_000, gen, device), None).flatten()
    print(f"G's samples: mean {fake.mean().item():.3f}, std {fake.std().item():.3f}")
'''

LOAD_MNIST = '''

def mnist_split(args):
    """MNIST from --data (IDX files, gzipped or not), downloaded by torchvision if absent, as
    (images, labels, held-out indices, indices to train on), split as ganlab's MNIST task splits it."""
    if not available_splits(args.data):
        import torchvision
        try:
            torchvision.datasets.MNIST(args.data, train=True, download=True)   # into DATA/MNIST/raw
        except (OSError, RuntimeError) as e:    # offline: a URLError, or torchvision's RuntimeError
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            sys.exit(f"No MNIST in {os.path.abspath(args.data)}, and downloading it failed ({why}). "
                     f"Pass --data DIR: a folder that holds MNIST's IDX files (t10k-images-idx3-ubyte.gz "
                     f"and t10k-labels-idx1-ubyte.gz, gzipped or not) in DIR, DIR/raw or DIR/MNIST/raw.")
    images, labels = load_mnist(args.data)
    held, train = split_held_out(len(images))
    print(f"{len(images):,} digits from {args.data}, {len(train):,} to train on")
    return images, labels, held, train
'''

DATA_MNIST = '''

def make_data(cfg, args, device):
    """The digits to train on (ganlab probes D on the ones held out), on the device as one
    tensor in [-1, 1]; a batch is a random index into it."""
    images, labels, _, train = mnist_split(args)
    images, labels = to_training_tensor(images[train], device), labels[train].to(device)
    conditional = cfg.model.name in CONDITIONAL

    def sample_real(n, gen):
        idx = torch.randint(len(images), (n,), generator=gen, device=device)
        return images[idx], (labels[idx] if conditional else None)

    def sample_labels(n, gen):
        return torch.randint(10, (n,), generator=gen, device=device) if conditional else None

    return sample_real, sample_labels


def report(G, cfg, args, device, gen):
    """Save 64 samples (for the conditional GAN: digits 0 to 9, a row each) as a PNG."""
    from torchvision.utils import save_image
    if cfg.model.name in CONDITIONAL:
        z = sample_noise(cfg.noise, 8, gen, device).repeat(10, 1)
        labels = torch.arange(10, device=device).repeat_interleave(8)
    else:
        z, labels = sample_noise(cfg.noise, 64, gen, device), None
    with torch.no_grad():
        save_image(G(z, labels), args.out, nrow=8, normalize=True, value_range=(-1, 1))
    print(f"wrote {args.out}")
'''

# Each exported task's data: its real samples and labels, and what the script reports at the end.
DATA_GLUE = {"gauss1d": [DATA_1D], "mnist": [LOAD_MNIST, DATA_MNIST]}

NAMESPACE = '''

def namespace(d):
    """CONFIG's sections as attributes (cfg.model.g_hidden), as ganlab's code reads them."""
    return SimpleNamespace(**{k: namespace(v) if isinstance(v, dict) else v for k, v in d.items()})
'''

ARGUMENTS = '''

def arguments(cfg, steps_help, out_help):
    """The command line, with CONFIG's values as its defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--steps", type=int, default=cfg.train.steps, help=steps_help)
    parser.add_argument("--seed", type=int, default=cfg.train.seed)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", default="data", help="MNIST folder")
    parser.add_argument("--out", default="samples.png", help=out_help)
    parser.add_argument("--log-every", type=int, default=0, help="print losses every N steps")
    return parser
'''

LOOP = '''

def main():
    cfg = namespace(CONFIG)
    args = arguments(cfg, "generator steps", "where MNIST samples go").parse_args()
    device = torch.device(args.device)
    threads = ""
    if device.type == "cpu":
        # ganlab's threads for this run (CONFIG): more would only make OpenMP's workers wait on each other.
        torch.set_num_threads(min(cfg.train.cpu_threads, os.cpu_count() or 1))
        threads = f" with {torch.get_num_threads()} CPU thread(s)"

    torch.manual_seed(args.seed)                    # the initial weights
    G, D = build(cfg)
    G, D = G.to(device), D.to(device)
    gen = torch.Generator(device).manual_seed(args.seed)   # the data and the noise
    # The models' own randomness (dropout masks, the penalty's points) has a stream of its own.
    model_gen = torch.Generator(device).manual_seed(args.seed + MODEL_STREAM)
    use_generator(G, model_gen)
    use_generator(D, model_gen)
    sample_real, sample_labels = make_data(cfg, args, device)
    # What train_iteration reads: ganlab's Trainer has the same attributes. This script
    # takes ganlab's plain path, so the fast path's shortcuts are off.
    gan = SimpleNamespace(
        G=G, D=D, cfg=cfg, loss=LOSSES[cfg.loss.name], model_gen=model_gen,
        opt_g=make_optimizer(G.parameters(), cfg.opt_g, device, fast=False),
        opt_d=make_optimizer(D.parameters(), cfg.opt_d, device, fast=False),
        sample_real=lambda n: sample_real(n, gen), sample_labels=lambda n: sample_labels(n, gen),
        noise=lambda n: sample_noise(cfg.noise, n, gen, device),
        fast=False, one_d_pass=False, last={})
    log_every = args.log_every or max(1, args.steps // 20)
    print(f"training {cfg.model.name} with {gan.loss.label} for {args.steps} steps on {device}{threads}")

    G.train(), D.train()
    for step in range(1, args.steps + 1):
        if cfg.train.lr_decay:
            scale = lr_scale(step - 1, args.steps)
            set_lr(gan.opt_g, cfg.opt_g.lr * scale)
            set_lr(gan.opt_d, cfg.opt_d.lr * scale)
        train_step(gan)             # k updates of D, then one of G

        if step % log_every == 0 or step == args.steps:
            d, g = gan.last["loss_d"].item(), gan.last["loss_g"].item()
            print(f"step {step}: loss_d {d:.4f} loss_g {g:.4f}", flush=True)
            if not (math.isfinite(d) and math.isfinite(g)):
                print("a loss became NaN or infinite: lower the learning rates", file=sys.stderr)
                return 1
    G.eval()
    report(G, cfg, args, device, gen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

DATA_AUTOENCODER = '''

def load_digits(args, device):
    """(digits to train on, digits held out), on the device in [-1, 1]. The held-out ones
    are those ganlab holds out; the reconstructions at the end show them."""
    images, _, held, train = mnist_split(args)
    return to_training_tensor(images[train], device), to_training_tensor(images[held], device)


def report(model, held_out, cfg, args, device, gen):
    """Save 64 decodes of codes z ~ N(0, I) as a PNG, and held-out digits above their reconstructions."""
    from torchvision.utils import save_image
    model.eval()
    with torch.no_grad():
        z = torch.randn(64, cfg.noise.dim, generator=gen, device=device)
        save_image(model.generate(z), args.out, nrow=8, normalize=True, value_range=(-1, 1))
        x = held_out[:32]
        recon = model.reconstruct(x)
        rows = [row for pair in zip(x.split(8), recon.split(8)) for row in pair]   # inputs, then outputs
        save_image(torch.cat(rows), args.recon_out, nrow=8, normalize=True, value_range=(-1, 1))
    print(f"wrote {args.out} and {args.recon_out}")
'''

AE_LOOP = '''

def main():
    cfg = namespace(CONFIG)
    parser = arguments(cfg, "training steps (batches)", "where the decoded random codes go")
    parser.add_argument("--recon-out", default="reconstructions.png", help="where the reconstructions go")
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = ""
    if device.type == "cpu":
        # ganlab's threads for this run (CONFIG): more would only make OpenMP's workers wait on each other.
        torch.set_num_threads(min(cfg.train.cpu_threads, os.cpu_count() or 1))
        threads = f" with {torch.get_num_threads()} CPU thread(s)"

    torch.manual_seed(args.seed)                    # the initial weights
    model = BUILD(cfg).to(device)
    gen = torch.Generator(device).manual_seed(args.seed)   # the batches and the VAE's noise
    images, held_out = load_digits(args, device)
    opt = make_optimizer(model.parameters(), cfg.opt_g, device, fast=False)
    B = cfg.train.batch_size
    log_every = args.log_every or max(1, args.steps // 20)
    print(f"training {cfg.model.name} for {args.steps} steps on {device}{threads}")

    model.train()
    for step in range(1, args.steps + 1):
        x = images[torch.randint(len(images), (B,), generator=gen, device=device)]
        # The reconstruction error, and for the VAE the KL term; their sum is what is minimized.
        terms = model.losses(x, gen)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

        if step % log_every == 0 or step == args.steps:
            values = {name: t.item() for name, t in {**terms, "loss": loss}.items()}
            print(f"step {step}: " + " ".join(f"{name} {v:.4f}" for name, v in values.items()), flush=True)
            if not all(math.isfinite(v) for v in values.values()):
                print("a loss became NaN or infinite: lower the learning rate", file=sys.stderr)
                return 1
    report(model, held_out, cfg, args, device, gen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
