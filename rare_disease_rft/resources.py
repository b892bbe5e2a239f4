"""Where bundled data and caches live, how compressed text files are opened, and how outputs are written.

Every output (a user's file, a cache entry) is written through a temporary file with a name of its
own beside the target and moved into place at the end: a reader never sees half a file, a failed
run leaves an earlier output as it was, and two runs filling a cache at once never share a
temporary file. A command checks its outputs with :func:`check_output` before any work.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import lzma
import os
import secrets
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterable

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
# what `rdrft rank` and the app serve for `default`: that model with the test split's cases added to
# its case index, once the benchmark has measured it without them (a clinician gets all the evidence)
SERVED_MODEL_DIR = REPO_ROOT / "artifacts" / "default-model-all-cases"
#: the names of the arrays in a folder :func:`write_arrays` wrote
ARRAYS_INDEX = "arrays.json"


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


class OutputError(ValueError):
    """An output that cannot be written, or that would overwrite an input; the message says why."""


def _temporary_name(path: Path) -> Path:
    # unique per writer; the target's suffix kept, as numpy and matplotlib read the format from it
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Calls ``write(temporary path)`` and moves the file written there to ``path`` (through a
    symlink, to the file it names); on any failure the temporary file is removed and ``path`` is
    left as it was."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Writes through a temporary file and a rename, so a reader never sees half a file."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Writes several files, each through a temporary file; none is moved into place before all are
    written, so a failure part-way leaves every earlier file as it was."""
    written: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            path = Path(path).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            written[path] = _temporary_name(path)
            written[path].write_bytes(data)
        for path, tmp in written.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in written.values():
            tmp.unlink(missing_ok=True)
        raise


def write_arrays(folder: str | Path, arrays: dict) -> None:
    """Writes numpy ``arrays`` to ``folder``, one ``NAME.npy`` each (no pickle), each through
    :func:`atomic_write` (two first runs filling one cache entry may race), then ``arrays.json``,
    their names: written last, it says the folder is complete."""
    import numpy as np  # here: the command line's start (its help) needs no numpy

    folder = Path(folder)
    for name, array in arrays.items():
        atomic_write(folder / f"{name}.npy", functools.partial(np.save, arr=array, allow_pickle=False))
    atomic_write_bytes(folder / ARRAYS_INDEX, json.dumps(list(arrays)).encode())


def read_arrays(folder: str | Path) -> dict | None:
    """The arrays :func:`write_arrays` wrote to ``folder``, None if it is incomplete.

    Memory-mapped copy-on-write: a page is read when first used (an array nothing uses costs
    nothing) and writing to an array changes this process's copy only. Cache files are replaced
    whole (:func:`atomic_write`), never changed in place, so the mapped pages stay as written."""
    import numpy as np

    folder = Path(folder)
    if not (folder / ARRAYS_INDEX).is_file():
        return None
    # plain arrays on the mapped pages (np.memmap's subclass would follow them into every result)
    return {name: np.load(folder / f"{name}.npy", mmap_mode="c").view(np.ndarray)
            for name in json.loads((folder / ARRAYS_INDEX).read_text())}


def check_output(path: str | Path, inputs: Iterable[str | Path] = (), read_suffixes: tuple[str, ...] | None = None,
                 folder: bool = False) -> None:
    """Raises :class:`OutputError` unless ``path`` can be written as a file (``folder``: a folder)
    and is none of the ``inputs``: not the same file as one (also through a symlink or a hard link),
    nor an existing file inside an input folder that reading the folder takes (a suffix among
    ``read_suffixes``; None: every file). Commands call it before any work."""
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, not a folder; give a folder for the output files")
    elif path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name")
    elif path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path} is read-only (nothing was written)")
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise OutputError(f"{path}: cannot write in {existing} ({err.strerror or err})") from None
    if path.is_file():
        for given in inputs:
            if _reads(Path(given), path, read_suffixes):
                raise OutputError(f"{path} is also an input ({given}): write the output elsewhere (nothing was written)")


def _reads(given: Path, file: Path, read_suffixes: tuple[str, ...] | None) -> bool:
    """Whether reading the input ``given`` reads the existing ``file``."""
    if given.is_dir():
        inside = file.resolve().is_relative_to(given.resolve())
        return inside and (read_suffixes is None or file.suffix.lower() in read_suffixes)
    return given.exists() and os.path.samefile(given, file)
