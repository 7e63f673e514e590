"""The registries of models, tasks and meters: what they hold, and that the app learns a new
entry from the registry alone (a model in its page's picker, a meter in the table of runs)."""
import pytest

from conftest import open_app, tiny
from ganlab.config import ConfigError, Experiment, Model, Noise
from ganlab.losses import LOSSES, GANLoss
from ganlab.meters import METERS, MeterSpec, meter, quality_meters, register_meter, summary_meters
from ganlab.models import AUTOENCODERS, MODELS, ModelSpec, is_conditional, mlp1d, mlp_mnist, model_spec, \
    models_for, register_model
from ganlab.tasks import TASKS, TaskSpec, make_task

# -- models -------------------------------------------------------------------------------------

def test_every_model_says_what_it_learns():
    assert {task: [m.name for m in models_for(task)] for task in TASKS} == {
        "gauss1d": ["mlp1d"], "toy2d": ["mlp2d"], "mnist": ["mlp", "maxout", "dcgan", "cgan"]}
    assert list(AUTOENCODERS) == ["ae", "vae"]
    for registry in (MODELS, AUTOENCODERS):
        for name, spec in registry.items():
            assert spec.name == name and spec.task in TASKS and spec.label and callable(spec.build), name
            assert model_spec(name) is spec
    for task in TASKS:   # a picker tells its models apart by their labels
        labels = [m.label for m in models_for(task)]
        assert len(set(labels)) == len(labels), task
    # The conditional models come from the specs: only the CGAN takes the digit label.
    assert [name for name in MODELS if is_conditional(name)] == ["cgan"]
    assert not is_conditional("vae") and not is_conditional("no such model")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="registered already"):
        register_model(ModelSpec("dcgan", "mnist", "Another DCGAN", mlp_mnist.build))
    with pytest.raises(ValueError, match="registered already"):
        register_model(ModelSpec("vae", "mnist", "A GAN named vae", mlp_mnist.build))
    with pytest.raises(ValueError, match="registered already"):
        register_meter(MeterSpec("w1", "W1 again", False))


def test_the_config_checks_a_model_against_its_task():
    with pytest.raises(ConfigError) as err:
        Experiment(task="mnist", noise=Noise("normal", 100), model=Model("mlp1d"))
    assert err.value.field == "model.name" and "mlp, maxout, dcgan, cgan" in str(err.value)
    with pytest.raises(ConfigError, match="model.name"):
        Experiment(task="gauss1d", model=Model("dcgan"))
    with pytest.raises(ConfigError, match="model.name"):
        Model("no-such-model")


def test_a_registered_model_is_known_to_the_config(monkeypatch):
    monkeypatch.setitem(MODELS, "throwaway1d", ModelSpec("throwaway1d", "gauss1d", "Throwaway", mlp1d.build))
    cfg = Experiment(model=Model("throwaway1d", g_hidden=8, d_hidden=8))
    assert cfg.model.name == "throwaway1d"
    with pytest.raises(ConfigError, match="model.name"):
        Experiment(task="mnist", model=Model("throwaway1d"))


# -- tasks --------------------------------------------------------------------------------------

class Toy3D:
    """A task class that a test registers."""

    def __init__(self, cfg, device):
        self.cfg, self.device = cfg, device


def test_every_task_has_a_lab_and_a_class():
    assert list(TASKS) == ["gauss1d", "toy2d", "mnist"]
    for name, spec in TASKS.items():
        assert spec.name == name and spec.label.endswith("lab") and spec.page == name
        assert spec.task_class().__module__ == f"ganlab.tasks.{name}"
    from pages.ui import PAGES
    assert {name: title for name, title, _, _ in PAGES if name in TASKS} == {n: t.label for n, t in TASKS.items()}


def test_the_task_names_come_from_the_registry(monkeypatch):
    with pytest.raises(ConfigError, match="task"):
        Experiment(task="toy3d")
    monkeypatch.setitem(TASKS, "toy3d", TaskSpec("toy3d", "3D toy lab", "toy3d", f"{__name__}:Toy3D"))
    monkeypatch.setitem(MODELS, "mlp3d", ModelSpec("mlp3d", "toy3d", "MLP", mlp1d.build))
    cfg = Experiment(task="toy3d", model=Model("mlp3d"))            # the config takes it as a task
    task = make_task(cfg, "cpu")                                     # its class, loaded when needed
    assert isinstance(task, Toy3D) and task.cfg is cfg
    from ganlab.export import ExportError, check
    with pytest.raises(ExportError, match="not the 3D toy lab's"):   # the export says it in the task's words
        check(cfg)


# -- meters -------------------------------------------------------------------------------------

def test_every_meter_says_what_it_means():
    for name, spec in METERS.items():
        assert spec.name == name and spec.words, name
        assert spec.higher_is_better in (True, False, None), name
        assert spec.fmt.format(0.5), name                               # a format a table can use
        if spec.floor is not None:    # the best value: a distance's 0, a share's 1
            assert spec.higher_is_better is not None, name
    assert summary_meters() == ("w1", "ks", "fid", "modes_covered")
    assert set(quality_meters()) == {"w1", "fid", "energy"}
    assert all(not meter(m).higher_is_better and meter(m).floor == 0 for m in quality_meters())
    assert meter("modes_covered").words_for("mnist") == "digits covered (of 10)"
    assert meter("modes_covered").words_for("toy2d") == "modes covered"
    assert meter("fid").better == "lower is better" and meter("confident").better == "higher is better"
    assert meter("loss_d").better == ""
    assert meter("not_a_meter").words == "not a meter"                  # an unknown column still has words


def test_the_table_of_runs_heads_its_meters_briefly():
    # Runs of every lab in one table (W1 and KS, modes, the Fréchet distance) still fit a projector's
    # 1280 px (the Runs page): at most four meter columns, each headed in a word or two. A fifth
    # summary meter, or one without a short heading, would make the table scroll sideways.
    assert len(summary_meters()) <= 4
    headings = [meter(m).heading for m in summary_meters()]
    assert all(len(h) <= 8 for h in headings), headings
    assert len(set(headings)) == len(headings)
    assert meter("w1").heading == "W1" and meter("loss_d").heading == "D loss"   # else its words


def test_tables_and_charts_read_the_meter_registry(monkeypatch):
    from ganlab import charts, families
    monkeypatch.setitem(METERS, "fid", MeterSpec("fid", "Fréchet thing", False, 0.0))
    assert charts.metric_words("fid") == "Fréchet thing"
    assert "Fréchet thing" in families.table_columns()
    title = charts.mnist_quality_figure({"step": [1], "fid": [3.0]}).layout.title.text
    assert title == "Fréchet thing (lower is better)"


# -- the app learns new entries from the registries alone ------------------------------------------

def throwaway_loss():
    return GANLoss("throwaway", "Throwaway loss, for a test", "Throwaway", "#123456",
                   LOSSES["bce-ns"].d_loss, LOSSES["bce-ns"].g_loss, LOSSES["bce-ns"].reference)


def test_a_throwaway_loss_and_meter_show_on_the_pages(monkeypatch, app_registry):
    from ganlab.tasks.gauss1d import Gauss1D
    monkeypatch.setitem(LOSSES, "throwaway", throwaway_loss())
    monkeypatch.setitem(METERS, "throwaway_share", MeterSpec("throwaway_share", "throwaway share, for a test",
                                                             True, 1.0, fmt="{:.1%}", summary=True))
    probe = Gauss1D.probe

    def probe_with_the_meter(self, trainer):   # the 1D task records the throwaway meter too
        views, meters = probe(self, trainer)
        return views, {**meters, "throwaway_share": 0.25}

    monkeypatch.setattr(Gauss1D, "probe", probe_with_the_meter)
    at = open_app("pages/gauss1d.py")
    picker = next(s for s in at.selectbox if s.label == "loss")
    assert "Throwaway loss, for a test" in picker.options

    run = app_registry.create(tiny(steps=100).replace(loss={"name": "throwaway"}), name="throwaway run",
                              page="gauss1d")
    assert run.join(60) and run.status == "finished"
    at = open_app("pages/runs.py")
    table = at.dataframe[0].value
    # The loss by its short name, the meter headed by its words and in its own format.
    assert list(table["loss"]) == ["Throwaway"] and list(table["throwaway share, for a test"]) == [0.25]
    assert list(_shown_cells(at)["throwaway share, for a test"]) == ["25.0%"]
    assert "throwaway share, for a test (throwaway_share)" in at.selectbox(key="runs-metric").options


def _shown_cells(at):
    """The runs table as the browser shows it: st.dataframe sends the Styler's display values."""
    import pyarrow as pa
    return pa.ipc.open_stream(at.dataframe[0].proto.arrow_data.styler.display_values).read_pandas()


def test_a_throwaway_1d_model_shows_in_the_picker_and_trains(monkeypatch, app_registry):
    monkeypatch.setitem(MODELS, "throwaway1d",
                        ModelSpec("throwaway1d", "gauss1d", "Throwaway 1D model, for a test", mlp1d.build))
    at = open_app("pages/gauss1d.py")
    picker = next(s for s in at.selectbox if s.label == "model")
    assert picker.options == ["MLP", "Throwaway 1D model, for a test"]   # by their labels
    picker.set_value("throwaway1d").run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]                               # no preset, and nothing to fix
    at.button(key="gauss1d-start").click().run()
    assert not at.exception, at.exception
    (run,) = app_registry.list()
    assert run.cfg.model.name == "throwaway1d"


def test_a_throwaway_mnist_model_without_a_preset_shows_in_the_picker(monkeypatch, mnist_dir):
    monkeypatch.setitem(MODELS, "throwaway", ModelSpec("throwaway", "mnist", "Throwaway MNIST model", mlp_mnist.build))
    monkeypatch.setenv("GANLAB_DATA", str(mnist_dir))
    at = open_app("pages/mnist.py", timeout=120)
    picker = next(s for s in at.selectbox if s.label == "model")
    assert "Throwaway MNIST model" in picker.options and "DCGAN (seed 001)" in picker.options
    picker.set_value("throwaway").run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]


def test_the_registry_modules_import_no_streamlit():
    import subprocess
    import sys
    code = ("import sys, ganlab.models, ganlab.tasks, ganlab.meters, ganlab.charts, ganlab.charts2d; "
            "assert 'streamlit' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_benchmarks_list_their_models_from_the_registry(monkeypatch, capsys):
    from ganlab import bench
    from ganlab.__main__ import main
    assert bench.mnist_models() == [m.name for m in models_for("mnist")]
    assert "cgan" not in bench.mnist_models(conditional=False)   # the seed's loop feeds no labels
    monkeypatch.setitem(MODELS, "throwaway", ModelSpec("throwaway", "mnist", "Throwaway MNIST model", mlp_mnist.build))
    assert "throwaway" in bench.mnist_models() and "throwaway" in bench.mnist_models(conditional=False)
    what, cfg = bench.mnist_config("throwaway")                  # no preset: the model's own defaults
    assert cfg.model == Model("throwaway") and cfg.task == "mnist" and "throwaway" in what
    assert bench.mnist_config("dcgan")[0] == "mnist-dcgan"
    assert main(["bench", "mnist", "--model", "nothing-such"]) == 2
    assert "throwaway" in capsys.readouterr().out                # offered with the others


@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec.settings])
def test_every_setting_a_page_shows_changes_the_model_it_builds(name):
    # A page draws a widget for each of the spec's settings: one that changed nothing would lie.
    from ganlab.config import Experiment, Model
    from ganlab.models import build_models
    spec = MODELS[name]
    base = Experiment(task=spec.task, model=Model(name=name))
    built = repr(build_models(base))
    for s in spec.settings:
        value = getattr(base.model, s.field)
        other = ("tanh" if value != "tanh" else "relu") if isinstance(value, str) else value + type(value)(s.step)
        changed = base.replace(model={s.field: other})
        assert repr(build_models(changed)) != built, f"{name}: {s.field} = {other!r} builds the same model"
