"""Gene nomenclature: one approved HGNC symbol for every symbol, alias and previous symbol.

Sources disagree on gene names (HPO annotations of one year, case reports of another), so every
comparison of genes goes through :func:`GeneNames.approved`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from .resources import BUNDLED_HGNC, open_text


@dataclass(frozen=True)
class Gene:
    symbol: str
    hgnc_id: str
    name: str
    entrez_id: str
    omim_id: str
    ensembl_id: str


class GeneNames:
    """HGNC nomenclature: approved symbols, their HGNC, NCBI, OMIM and Ensembl ids, aliases, previous symbols."""

    def __init__(self, genes: list[Gene], synonyms: dict[str, str]):
        self._by_symbol = {g.symbol.upper(): g for g in genes}
        self._by_hgnc = {g.hgnc_id: g for g in genes}
        self._by_entrez = {g.entrez_id: g for g in genes if g.entrez_id}
        self._by_ensembl = {g.ensembl_id: g for g in genes if g.ensembl_id}
        # alias or previous symbol (upper case) -> approved symbol; approved symbols win
        self._synonyms = synonyms

    @classmethod
    def from_tsv(cls, path: Path = BUNDLED_HGNC) -> "GeneNames":
        genes: list[Gene] = []
        previous: dict[str, str] = {}
        aliases: dict[str, str] = {}
        ambiguous: set[str] = set()
        with open_text(path) as handle:
            header = handle.readline().rstrip("\n").split("\t")
            col = {name: i for i, name in enumerate(header)}
            for line in handle:
                row = line.rstrip("\n").split("\t")
                if row[col["status"]] != "Approved":
                    continue
                gene = Gene(
                    symbol=row[col["symbol"]],
                    hgnc_id=row[col["hgnc_id"]],
                    name=row[col["name"]],
                    entrez_id=row[col["entrez_id"]],
                    omim_id=row[col["omim_id"]].split("|")[0],
                    ensembl_id=row[col["ensembl_gene_id"]],
                )
                genes.append(gene)
                for field, table in (("prev_symbol", previous), ("alias_symbol", aliases)):
                    for other in filter(None, row[col[field]].split("|")):
                        key = other.upper()
                        if key in table and table[key] != gene.symbol:
                            ambiguous.add(key)
                        table[key] = gene.symbol
        # A previous symbol is a stronger claim than an alias; a name two genes claim maps to neither.
        synonyms = {k: v for k, v in aliases.items() if k not in ambiguous}
        synonyms.update({k: v for k, v in previous.items() if k not in ambiguous})
        approved = {g.symbol.upper() for g in genes}
        synonyms = {k: v for k, v in synonyms.items() if k not in approved}
        return cls(genes, synonyms)

    def approved(self, symbol: str | None) -> str | None:
        """The approved symbol for a symbol, alias or previous symbol (any case); None if unknown."""
        if not symbol:
            return None
        key = symbol.strip().upper()
        gene = self._by_symbol.get(key)
        if gene is not None:
            return gene.symbol
        return self._synonyms.get(key)

    def normalise(self, symbol: str) -> str:
        """Like :meth:`approved`, but an unknown symbol comes back upper-cased rather than lost."""
        return self.approved(symbol) or symbol.strip().upper()

    def get(self, symbol: str) -> Gene | None:
        approved = self.approved(symbol)
        return self._by_symbol.get(approved.upper()) if approved else None

    def by_hgnc(self, hgnc_id: str) -> Gene | None:
        return self._by_hgnc.get(hgnc_id)

    def by_entrez(self, entrez_id: str) -> Gene | None:
        return self._by_entrez.get(str(entrez_id))

    def by_ensembl(self, ensembl_id: str) -> Gene | None:
        """The gene of an Ensembl gene id (``ENSG00000144285``; a version suffix ``.12`` is ignored)."""
        return self._by_ensembl.get(ensembl_id.split(".")[0])

    def __len__(self) -> int:
        return len(self._by_symbol)


@functools.lru_cache(maxsize=1)
def gene_names() -> GeneNames:
    """The bundled HGNC nomenclature, loaded once per process."""
    return GeneNames.from_tsv()
