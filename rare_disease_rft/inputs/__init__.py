"""The input layer: every reader of what users hand us (phenopackets, texts, candidate genes)."""
