"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
import streamlit as st

st.set_page_config(page_title="ganlab", page_icon="🧪", layout="wide")

from pages import ui  # noqa: E402

pages = [
    st.Page("pages/gauss1d.py", title="1D Gaussian lab", icon=":material/show_chart:", url_path="gauss1d",
            default=True),
    st.Page("pages/mnist.py", title="MNIST lab", icon=":material/draw:", url_path="mnist"),
    st.Page("pages/compare.py", title="Loss lab", icon=":material/compare_arrows:", url_path="compare"),
]
nav = st.navigation(pages)
ui.frame()
nav.run()
