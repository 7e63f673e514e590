"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
import streamlit as st

st.set_page_config(page_title="ganlab", page_icon="🧪", layout="wide")

from pages import ui  # noqa: E402

pages = [
    st.Page("pages/gauss1d.py", title="1D Gaussian lab", icon=":material/show_chart:", url_path="gauss1d",
            default=True),
    st.Page("pages/toy2d.py", title="2D toy lab", icon=":material/scatter_plot:", url_path="toy2d"),
    st.Page("pages/mnist.py", title="MNIST lab", icon=":material/draw:", url_path="mnist"),
    st.Page("pages/autoencoders.py", title="AE & VAE lab", icon=":material/compress:", url_path="autoencoders"),
    st.Page("pages/compare.py", title="Loss lab", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("pages/runs.py", title="Runs", icon=":material/list:", url_path="runs"),
    st.Page("pages/saved.py", title="Saved runs", icon=":material/save:", url_path="saved"),
]
nav = st.navigation(pages)
ui.frame()
nav.run()
