"""The home page: the root URL, with a way into every page and the runs training now."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from conftest import tiny
from pages import ui

ROOT = Path(__file__).resolve().parents[1]


def home() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_root_url_is_the_home_page_with_a_link_to_every_page(app_registry):
    at = home()
    assert [t.value for t in at.title] == ["ganlab"]
    links = [link.proto for link in at.get("page_link")]
    assert [link.page for link in links] == [name for name, *_ in ui.PAGES]
    for name, *_ in ui.PAGES:
        assert (ROOT / "pages" / f"{name}.py").is_file()      # each link leads to a page file
    assert not at.info                                        # nothing is training


def test_the_home_page_says_how_many_runs_are_training(app_registry):
    for i in range(2):
        app_registry.create(tiny(steps=10**6), name=f"r{i}", paused=True)
    at = home()
    assert "2 runs training on this server now." in at.info[0].value
    assert "runs" in [link.proto.page for link in at.get("page_link")]
