"""Where bundled data and caches live, and how compressed text files are opened."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
from pathlib import Path
from typing import IO

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
#: the bundled HPO releases, one folder each (``data/hpo/README.md``), and the default one:
#: switching the default release is this one name (and a retrain of every trained model)
BUNDLED_HPO_RELEASES = PACKAGE_DATA / "hpo"
BUNDLED_HPO_RELEASE = "2026-06-06"
BUNDLED_HPO = BUNDLED_HPO_RELEASES / BUNDLED_HPO_RELEASE
BUNDLED_HGNC = PACKAGE_DATA / "hgnc" / "hgnc_genes.tsv.xz"
BUNDLED_PHENOPACKETS = PACKAGE_DATA / "phenopacket-store" / "phenopackets.tar.xz"
# The commit of phenopacket-store the bundled archive was taken from (its README says how).
BUNDLED_PHENOPACKETS_COMMIT = "b694d17ec6fd3bccab8a69235f4e13b0b82b7ae5"

REPO_ROOT = Path(__file__).resolve().parent.parent
# `make run` and `rdrft train` prepare the bundled corpus here when a config names no other place
# (recipes name it relative to the repository, where make and the README's commands run).
DATA_FOLDER = "data/phenopacket-store"
DEFAULT_DATA_DIR = REPO_ROOT / DATA_FOLDER
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "default-model"


def cache_dir(*parts: str) -> Path:
    """A folder under the user cache (``RDRFT_CACHE`` overrides), created on demand."""
    root = os.environ.get("RDRFT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rare-disease-rft"
    )
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_home(*parts: str) -> Path:
    """A folder for data the user adds (``RDRFT_DATA`` overrides), e.g. updated HPO releases."""
    root = os.environ.get("RDRFT_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "rare-disease-rft"
    )
    return Path(root, *parts)


def find_text_file(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, plain or compressed (.xz, .gz); a clear error when absent."""
    for suffix in ("", ".xz", ".gz"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder} holds no {name} (nor {name}.xz or {name}.gz)")


def open_text(path: Path) -> IO[str]:
    """Opens a plain, xz or gzip text file as UTF-8."""
    path = Path(path)
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def fingerprint(paths: list[Path]) -> str:
    """A short content hash of files, so a cache follows the data it was built from."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes through a temporary file and a rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
