"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
from ganlab.worker import FOREGROUND
from pages import ui

ui.page_setup()
nav = ui.navigation()
ui.frame()
with FOREGROUND.serving():    # a page answering a click goes before the training threads' next steps
    nav.run()
