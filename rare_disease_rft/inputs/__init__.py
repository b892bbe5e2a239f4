"""The input layer: every reader of what users hand us, used at inference and for training data.

One module per concept: :mod:`.patient` (what an input says about a patient), :mod:`.phenopackets`
(GA4GH phenopacket files, folders and archives), :mod:`.documents` (a text to read),
:mod:`.texts` (text files and PubMed exports -> documents), :mod:`.pubmed` (PubMed XML, MEDLINE,
efetch), :mod:`.concepts` (text -> HPO mentions with negation), :mod:`.case_reports` (which
sentences of a case report are about the patient), :mod:`.sentences` (sentence spans),
:mod:`.candidates` (candidate genes from a gene list or an annotated VCF).
Nothing here imports the rankers, training or ``data_prep``: data flows from here onwards.
"""
