"""A stranger's checkpoint, zip or link: refused in one line, bounded before it is read, and
never a way to make the server read, quote or build something of the sender's choosing."""
import io
import json
import resource
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny
from ganlab import checkpoints, cost
from ganlab.checkpoints import CheckpointError
from ganlab.config import ConfigError, Experiment, Train
from ganlab.runs import FINISHED, RunRegistry

SECRET = "API_TOKEN=sk-live-1234567890ab"


def finished(cfg, **kwargs):
    run = RunRegistry().create(cfg, **kwargs)
    assert run.join(120) and run.status == FINISHED, run.snapshot().message
    return run


@pytest.fixture
def saved(tmp_path):
    run = finished(tiny(40), name="tiny")
    return run, checkpoints.save(run, tmp_path / "saves" / "tiny")


def zipped(files: dict, folder: str = "ck") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(f"{folder}/{name}" if folder else name, data)
    return buffer.getvalue()


def files_of(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def edited(folder: Path, change) -> dict:
    files = files_of(folder)
    header = json.loads(files["config.json"])
    change(header)
    files["config.json"] = json.dumps(header).encode()
    return files


def peak_rss_growth(action) -> int:
    """Bytes the process's peak resident memory grew by while `action` ran."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    action()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024


# -- nothing from outside names a server path ------------------------------------------------

def test_a_checkpoint_that_names_a_server_file_never_reads_or_quotes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    secret = tmp_path / "server-secrets.csv"
    secret.write_text("x,y\n" + "1,2\n" * 20 + SECRET + ",3\n")
    from ganlab.data.toy2d import save_points
    points = save_points(np.random.default_rng(0).normal(size=(40, 2)))
    cfg = Experiment.from_dict({**tiny(20).to_dict(), "task": "toy2d",
                                "model": {"name": "mlp2d", "g_hidden": 8, "d_hidden": 8},
                                "noise": {"kind": "normal", "dim": 2},
                                "toy2d": {"kind": "csv", "csv_path": points.name}})
    run = finished(cfg, name="mine")
    folder = checkpoints.save(run, tmp_path / "saves" / "mine")
    assert (folder / "points.csv").read_bytes() == points.read_bytes()     # the points travel with it

    for path in (str(secret), f"../../{secret.name}", "points-0123456789abcdef.csv"):
        files = edited(folder, lambda h: h["experiment"]["toy2d"].update(csv_path=path))
        del files["points.csv"]
        with pytest.raises(CheckpointError, match="holds no points.csv") as caught:
            checkpoints.import_zip(zipped(files), tmp_path / "in")
        assert SECRET not in str(caught.value) and str(tmp_path) not in str(caught.value)

    # With its points.csv, the server path in config.json is ignored: the points come from the zip.
    files = edited(folder, lambda h: h["experiment"]["toy2d"].update(csv_path=str(secret)))
    imported = checkpoints.load(checkpoints.import_zip(zipped(files), tmp_path / "in"))
    assert imported.cfg.toy2d.csv_path == points.name
    bad = dict(files, **{"points.csv": secret.read_bytes()})   # a points file that is not numbers
    with pytest.raises(CheckpointError, match="points.csv: line 22, column 1 is not a number") as caught:
        checkpoints.import_zip(zipped(bad), tmp_path / "in")
    assert SECRET not in str(caught.value)


def test_a_checkpoint_keeps_no_data_folder_and_takes_none(saved, tmp_path):
    run, folder = saved
    files = edited(folder, lambda h: h["experiment"]["train"].update(data_dir="/srv/private/data"))
    ckpt = checkpoints.load(checkpoints.import_zip(zipped(files), tmp_path / "in"))
    assert ckpt.cfg.train.data_dir == ""                                   # this server's own folder
    mine = finished(tiny(20, data_dir=str(tmp_path)), name="with a folder")
    header = json.loads((checkpoints.save(mine, tmp_path / "s2") / "config.json").read_text())
    assert header["experiment"]["train"]["data_dir"] == ""                  # nor does it leave in a save


# -- bounded before it is read -----------------------------------------------------------------

def test_a_tiny_zip_naming_a_huge_model_is_refused_before_anything_is_built(saved, tmp_path):
    run, folder = saved
    files = edited(folder, lambda h: h["experiment"]["model"].update(g_hidden=8192, g_depth=16,
                                                                       d_hidden=8192, d_depth=16))
    data = zipped(files)
    assert len(data) < 100_000

    def refuse():
        with pytest.raises(CheckpointError, match=r"config.json: model: this run needs about .* GB"):
            checkpoints.import_zip(data, tmp_path / "in")
    started = time.perf_counter()
    grew = peak_rss_growth(refuse)
    print(f"huge-model zip refused in {time.perf_counter() - started:.3f} s, peak memory +{grew / 2**20:.0f} MiB")
    assert grew < 300 * 2**20     # building it would take 34 GB
    assert not (tmp_path / "in").exists() or not any((tmp_path / "in").iterdir())


def test_a_zip_bomb_is_refused_by_what_it_unpacks_to(saved, tmp_path):
    run, folder = saved
    files = files_of(folder)
    files["metrics.csv"] = b"step,loss_d,loss_g,d_real,d_fake,g_grad_norm,gp_grad_norm\n" + \
        b"1,0.5,0.5,0.5,0.5,0.5,0.5\n" * 1_300_000                          # 33 MB, zips to ~100 KB
    data = zipped(files)
    assert len(data) < 1_000_000

    def refuse():
        with pytest.raises(CheckpointError, match="metrics.csv unpacks to 33,800,058 bytes; a checkpoint's is at most"):
            checkpoints.import_zip(data, tmp_path / "in")
    grew = peak_rss_growth(refuse)
    print(f"zip bomb refused, peak memory +{grew / 2**20:.0f} MiB")
    assert grew < 200 * 2**20


def test_a_zip_of_many_entries_is_refused_before_they_are_read(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for i in range(5000):
            z.writestr(f"e{i}", b"")
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="the zip holds 5,000 entries"):
        checkpoints.import_zip(buffer.getvalue(), tmp_path / "in")
    print(f"5,000-entry zip refused in {time.perf_counter() - started:.3f} s")


@pytest.mark.parametrize("entry", ["/etc/ck/config.json", "ck/../config.json", "../ck/config.json",
                                   "ck/../../x", "C:/ck/config.json"])
def test_a_zip_with_an_entry_outside_its_folder_is_refused_whole(saved, tmp_path, entry):
    run, folder = saved
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files_of(folder).items():
            z.writestr(f"ck/{name}", data)
        z.writestr(entry, b"{}")
    with pytest.raises(CheckpointError, match="leaves its folder"):
        checkpoints.import_zip(buffer.getvalue(), tmp_path / "in")


def test_a_zip_with_a_symbolic_link_is_refused_whole(saved, tmp_path):
    run, folder = saved
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files_of(folder).items():
            z.writestr(f"ck/{name}", data)
        link = zipfile.ZipInfo("ck/samples.png")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/etc/passwd")
    with pytest.raises(CheckpointError, match="symbolic link"):
        checkpoints.import_zip(buffer.getvalue(), tmp_path / "in")


@pytest.mark.parametrize("change, rule", [
    (lambda h: h.update(version=0), "format version 0"),
    (lambda h: h.update(version=-7), "format version -7"),
    (lambda h: h.update(version=True), "not a whole number"),
    (lambda h: h["experiment"]["train"].update(snapshot_every=10**18), "train.snapshot_every: must be in"),
    (lambda h: h["experiment"]["train"].update(history_cap=10**18), "train.history_cap: must be in"),
    (lambda h: h["experiment"]["train"].update(image_history=10_000), "train.image_history: must be in"),
    (lambda h: h.update(name="../../../../outside"), "name must be plain"),
    (lambda h: h.update(name="x" * 5000), "name must be plain"),
    (lambda h: h.update(name="x" * 2_000_000), "config.json unpacks to 2,00"),
    (lambda h: h.update(page="../../etc"), "page must be a short plain id"),
    (lambda h: h.update(run_id="../x"), "run_id must be a short plain id"),
    (lambda h: h.update(events=[[1, "change", "x"]] * 20_000), "events must be a list of at most 10,000"),
    (lambda h: h.update(events=[[99, "change", "from the future"]]), "each event must be"),
])
def test_every_field_of_config_json_is_checked(saved, tmp_path, change, rule):
    run, folder = saved
    with pytest.raises(CheckpointError, match=rule):
        checkpoints.import_zip(zipped(edited(folder, change)), tmp_path / "in")


def test_a_deeply_nested_config_and_a_ragged_history_are_one_line_and_never_break_the_list(saved, tmp_path):
    run, folder = saved
    root = folder.parent
    deep = root / "deep"
    deep.mkdir()
    (deep / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    ragged = root / "ragged"
    ragged.mkdir()
    for name, data in files_of(folder).items():
        (ragged / name).write_bytes(data)
    (ragged / "metrics.csv").write_text("step,loss_d\n1,0.5\n2,0.5,0.7\n")
    with pytest.raises(CheckpointError, match="config.json is corrupt|nested too deeply"):
        checkpoints.load(deep)
    with pytest.raises(CheckpointError, match="metrics.csv: line 3 has 3 values, the header 2"):
        checkpoints.load(ragged)
    listed = {s.folder.name: s for s in checkpoints.list_saved(root)}
    assert listed["tiny"].error == "" and listed["deep"].error


def test_weights_must_be_finite_and_hold_nothing_else(saved, tmp_path):
    run, folder = saved
    state = torch.load(folder / "weights.pt", weights_only=True)
    nan = {**state, "G": {k: torch.full_like(v, float("nan")) for k, v in state["G"].items()}}
    torch.save(nan, folder / "weights.pt")
    with pytest.raises(CheckpointError, match=r"weights.pt: G\..* holds NaN or infinite values"):
        checkpoints.load(folder)
    torch.save({**state, "stash": torch.zeros(1000)}, folder / "weights.pt")
    with pytest.raises(CheckpointError, match="holds entries a ganlab checkpoint has not"):
        checkpoints.load(folder)


def test_an_optimizer_state_or_a_random_stream_that_cannot_resume_is_refused_at_import(saved, tmp_path):
    run, folder = saved
    files = edited(folder, lambda h: h["experiment"]["opt_d"].update(name="sgd"))   # Adam's state, SGD named
    with pytest.raises(CheckpointError, match="opt_d is the state of another optimizer than config.json's sgd"):
        checkpoints.import_zip(zipped(files), tmp_path / "in")
    state = torch.load(folder / "weights.pt", weights_only=True)
    for group in state["opt_d"]["param_groups"]:
        del group["betas"]
    torch.save(state, folder / "weights.pt")
    with pytest.raises(CheckpointError, match="another optimizer"):
        checkpoints.load(folder)
    state = torch.load(folder / "weights.pt", weights_only=True) | {"rng": run.trainer.gen.get_state()[:100]}
    for group in state["opt_d"]["param_groups"]:
        group["betas"] = (0.5, 0.999)
    torch.save(state, folder / "weights.pt")
    with pytest.raises(CheckpointError, match="rng state is truncated or foreign"):
        checkpoints.load(folder)


# -- a link or a config over this machine's budget ----------------------------------------------

@pytest.mark.parametrize("change, knob", [
    ({"model": {"g_hidden": 8192, "g_depth": 16, "d_hidden": 8192, "d_depth": 16}}, "model"),
    ({"train": {"batch_size": 1_000_000}}, "train.batch_size"),
    ({"train": {"batch_size": 20_000, "d_steps": 1000}}, "train.d_steps"),
])
def test_a_config_over_the_budget_is_refused_with_its_cost_before_a_run_exists(change, knob):
    from ganlab.presets import PRESETS
    cfg = PRESETS["gauss1d"].config.replace(**change)     # the 1D lab's own model, as a link would leave it
    registry = RunRegistry()
    with pytest.raises(cost.BudgetError, match=f"^{knob}: this run needs about") as caught:
        registry.create(cfg, name="too big")
    assert "may take" in str(caught.value) and registry.list() == []
    assert isinstance(caught.value, ConfigError)


def test_a_config_whose_one_update_outlasts_a_stop_is_refused(monkeypatch):
    # Stop is read between two D or G updates, so one update longer than a second would
    # hold Stop past its second even though the whole step (5 s) and the memory fit.
    from ganlab.presets import PRESETS
    monkeypatch.setattr(cost.os, "cpu_count", lambda: 2)            # this machine, wherever CI runs
    cfg = PRESETS["mnist-dcgan"].config.replace(train={"batch_size": 1024, "device": "cpu"})
    spent = cost.estimate(cfg)
    assert spent.seconds("cpu") < cost.MAX_STEP_SECONDS and spent.memory < cost.budget("cpu")[0]
    with pytest.raises(cost.BudgetError, match=r"s an update\)") as caught:
        cost.check(cfg)
    assert caught.value.field == "train.batch_size"
    cost.check(cfg.replace(train={"batch_size": 256}))               # the preset's own scale fits


def test_every_preset_fits_the_budget_of_a_small_machine(monkeypatch):
    from ganlab.presets import PRESETS
    monkeypatch.setattr(cost, "budget", lambda device: (2 * 2**30, cost.MAX_STEP_SECONDS))   # a 16 GB laptop
    for preset in PRESETS.values():
        spent = cost.check(preset.config)
        assert spent.params > 0 and spent.memory < 2**30


# -- nothing lost -------------------------------------------------------------------------------

KILLED_SAVE = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r}); sys.path.insert(0, {root!r})
    from conftest import tiny
    from ganlab import checkpoints
    from ganlab.runs import RunRegistry
    run = RunRegistry().create(tiny(30), name="tiny"); run.join(60)
    folder = checkpoints.save(run, {folder!r})
    if {swap!r} == "none":
        checkpoints._exchange = lambda a, b: False
        real = os.replace
        def replace(src, dst):
            real(src, dst)
            if ".old-" in str(dst):
                os._exit(9)          # killed between the two renames
        checkpoints.os.replace = replace
    else:
        real = checkpoints.shutil.rmtree
        def rmtree(path, **kw):
            if ".tmp-" in str(path):
                os._exit(9)          # killed right after the swap, before the old copy went
            real(path, **kw)
        checkpoints.shutil.rmtree = rmtree
    checkpoints.save(run, folder)
""")


@pytest.mark.parametrize("swap", ["atomic", "none"])
def test_a_save_killed_mid_swap_leaves_a_loadable_checkpoint_under_its_name(tmp_path, monkeypatch, swap):
    folder = tmp_path / "saves" / "tiny"
    script = KILLED_SAVE.format(tests=str(Path(__file__).parent), root=str(Path(__file__).parents[1]),
                                folder=str(folder), swap=swap)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr[-2000:]
    hidden = [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]
    assert hidden                                                   # the kill left something behind
    if swap == "atomic":
        assert checkpoints.load(folder).step == 30                  # at every instant, under its name
    monkeypatch.setattr(checkpoints, "LEFTOVER_AGE", 0.0)
    listed = checkpoints.list_saved(folder.parent)                  # reading the folder tidies it
    assert [s.folder.name for s in listed] == ["tiny"] and checkpoints.load(folder).step == 30
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_a_young_hidden_folder_is_left_alone_while_its_save_may_still_be_writing(saved):
    run, folder = saved
    young = folder.parent / ".tiny.tmp-0123abcd"
    young.mkdir()
    checkpoints.list_saved(folder.parent)
    assert young.exists()


def test_a_bigger_history_cap_than_a_link_may_set_is_refused():
    with pytest.raises(ConfigError, match="train.history_cap"):
        Train(history_cap=10**12)
    with pytest.raises(ConfigError, match="train.image_history"):
        Train(image_history=10_000)
