"""rare-disease-rft: rank the causal gene of a rare-disease patient from their phenotypes."""

__version__ = "0.1.0"
