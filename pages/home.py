"""The home page: what ganlab is, and a way into each lab."""
import streamlit as st

from ganlab.runs import ACTIVE
from pages import ui

ui.require_frame()

st.title("ganlab")
st.caption("A laboratory for generative adversarial networks. Pick a model and its settings, press Start, "
           "and watch the generator and the discriminator learn against each other, live.")

active = [run for run in ui.registry().list() if run.status in ACTIVE]
if active:
    st.info(f"{len(active)} run{'s' if len(active) > 1 else ''} training on this server now.",
            icon=":material/directions_run:")
    st.page_link("pages/runs.py", label="See them on the Runs page", icon=":material/list:")

for row in range(0, len(ui.PAGES), 2):
    for column, (name, title, icon, about) in zip(st.columns(2), ui.PAGES[row:row + 2]):
        with column.container(border=True):
            st.page_link(f"pages/{name}.py", label=f"**{title}**", icon=icon)
            st.caption(about)
