"""Gradient Flow Lab — placeholder home page until the dashboard lands."""
import streamlit as st

st.set_page_config(page_title="Gradient Flow Lab", page_icon="📉", layout="wide")
st.title("Gradient Flow Lab")
st.write("See why weight initialization matters: the dashboard is being built. Use `python -m core run` meanwhile.")
