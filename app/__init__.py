"""The clinician's Streamlit app (``rdrft app``)."""
