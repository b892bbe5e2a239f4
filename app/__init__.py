"""The clinician's Streamlit app (``rdrft app``)."""

#: the model ``rdrft app`` serves (its --model), handed to the page
MODEL_ENV = "RDRFT_APP_MODEL"
#: "1" when the user gave ``rdrft app --trust-remote-code``, handed to the page's model loading
TRUST_REMOTE_CODE_ENV = "RDRFT_APP_TRUST_REMOTE_CODE"
