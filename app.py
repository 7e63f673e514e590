"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
import streamlit as st

from pages import ui

st.set_page_config(**ui.PAGE_CONFIG)
nav = ui.navigation()
ui.frame()
nav.run()
