"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
import streamlit as st

st.set_page_config(page_title="ganlab", page_icon="🧪", layout="wide")

from pages import ui  # noqa: E402

nav = ui.navigation()
ui.frame()
nav.run()
