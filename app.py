"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
from pages import ui

ui.page_setup()
nav = ui.navigation()
ui.frame()
nav.run()
