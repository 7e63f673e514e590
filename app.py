"""ganlab: a point-and-click GAN laboratory.

    streamlit run app.py
"""
import streamlit as st

st.set_page_config(page_title="ganlab", page_icon="🧪", layout="wide")

from ganlab.data.mnist import available_splits, data_root  # noqa: E402
from ganlab.system import device_summary  # noqa: E402
from pages import ui  # noqa: E402

pages = [
    st.Page("pages/gauss1d.py", title="1D Gaussian lab", icon="📈", url_path="gauss1d", default=True),
]
nav = st.navigation(pages)
ui.enter_frame()

with st.sidebar:
    st.markdown("### ganlab")
    st.caption(f"**Device:** {device_summary()}")
    root = data_root()
    splits = available_splits(root)
    found = f"MNIST {' + '.join(splits)} split" if splits else "no MNIST found"
    st.caption(f"**Data folder:** `{root.resolve()}` ({found}). Set `GANLAB_DATA` to change it.")

nav.run()
