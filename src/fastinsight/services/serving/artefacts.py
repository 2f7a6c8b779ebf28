"""Served model versions on this host's disk: one copy per host, mapped by every process.

A serving process does not read a version's arrays into its own memory. It asks
:class:`HostArtefacts` for the version's directory and maps the ``.npy`` files in it
read-only (``np.load(mmap_mode="r")``), so the N worker processes of a host share one
copy in the page cache, and a write to a served array fails in the process that tries
it instead of making that process's answers differ from the others'.

Layout, under ``Settings.model_cache_dir`` (default ``<var_dir>/models``)::

    <version>/<digest>/            the version's stored files, as training wrote them
    <version>/<digest>/derived/    files this host derived from them (unit item vectors,
                                   HNSW graphs), built once per host
    <version>/.lock                taken while either is written

``digest`` covers the stored files' checksums, so a version whose files were stored
again (a repaired chunk) gets a fresh copy instead of the old one. Everything is written
into a temporary name next to its place and renamed into it once complete, under the
version's lock file: processes that start together download and build once, the others
wait for the lock and then find the result, and nobody ever maps half a file. A
directory another process still maps may be removed: Linux keeps a mapped file until
it is unmapped. ``prune`` removes the copies of versions that are no longer stored.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fastinsight.recsys.base import load_npy
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)

DERIVED = "derived"
LOCK = ".lock"
PARTIAL = ".partial-"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def folder_name(version: str) -> str:
    """``version`` as one path component: itself when plainly spelled, else a digest."""
    if _SAFE.fullmatch(version):
        return version
    return "v-" + hashlib.sha256(version.encode()).hexdigest()[:32]


def files_digest(doc: Document) -> str:
    """What the copy of a version depends on: its stored files and their checksums."""
    files = sorted((str(f.get("name")), str(f.get("sha256"))) for f in doc.get("files", []))
    return hashlib.sha256(repr(files).encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and threads: each open is its own holder)."""
    with path.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class HostArtefacts:
    """The per-host store of downloaded versions (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def fetch(self, repo: ModelVersionRepository, version: str) -> tuple[Path, Document]:
        """The version's folder on this host (downloaded first if no process has yet) and
        its document."""
        doc = repo.get(version)
        if doc is None:
            raise KeyError(version)
        home = self.root / folder_name(version)
        target = home / files_digest(doc)
        if target.is_dir():
            return target, doc
        home.mkdir(parents=True, exist_ok=True)
        with _locked(home / LOCK):
            if target.is_dir():  # another process downloaded it while we waited
                return target, doc
            partial = Path(tempfile.mkdtemp(prefix=PARTIAL, dir=home))
            try:
                repo.download(version, partial, doc=doc)
                os.rename(partial, target)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
        log.info("model version %s stored on this host in %s", version, target)
        return target, doc

    def derived_array(self, directory: Path, name: str, compute: Callable[[], np.ndarray]
                      ) -> np.ndarray:
        """``compute()`` saved once per host beside the version's files, mapped read-only."""
        path = directory / DERIVED / f"{name}.npy"
        if not path.exists():
            with _locked(directory.parent / LOCK):
                if not path.exists():
                    path.parent.mkdir(exist_ok=True)
                    partial = path.with_name(f"{PARTIAL}{name}-{os.getpid()}.npy")
                    try:
                        np.save(partial, np.ascontiguousarray(compute()), allow_pickle=False)
                        os.replace(partial, path)
                    finally:
                        partial.unlink(missing_ok=True)
        return load_npy(path, mmap=True)

    def derived_folder(self, directory: Path, name: str, build: Callable[[Path], None]) -> Path:
        """A folder ``build(folder)`` fills, made once per host beside the version's files."""
        target = directory / DERIVED / name
        if not target.is_dir():
            with _locked(directory.parent / LOCK):
                if not target.is_dir():
                    target.parent.mkdir(exist_ok=True)
                    partial = Path(tempfile.mkdtemp(prefix=PARTIAL, dir=target.parent))
                    try:
                        build(partial)
                        os.rename(partial, target)
                    except BaseException:
                        shutil.rmtree(partial, ignore_errors=True)
                        raise
        return target

    def prune(self, stored: Collection[str]) -> list[str]:
        """Remove the copies of versions not in ``stored`` (and copies left half-written by
        a process that died); returns the folders removed."""
        if not self.root.is_dir():
            return []
        keep = {folder_name(v) for v in stored}
        removed = []
        for home in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if home.name not in keep:
                shutil.rmtree(home, ignore_errors=True)
                removed.append(home.name)
                continue
            with _locked(home / LOCK):  # a download in progress holds it: what is left is dead
                for partial in home.glob(f"{PARTIAL}*"):
                    shutil.rmtree(partial, ignore_errors=True)
                for partial in home.glob(f"*/{DERIVED}/{PARTIAL}*"):
                    if partial.is_dir():
                        shutil.rmtree(partial, ignore_errors=True)
                    else:
                        partial.unlink(missing_ok=True)
        if removed:
            log.info("removed this host's copies of %d model versions no longer stored",
                     len(removed))
        return removed


# ---- array folders ------------------------------------------------------------------------
def write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Each array as ``<folder>/<name>.npy``, C-ordered: mappable as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)


def read_arrays(directory: Path, folder: str, archive: str) -> dict[str, np.ndarray] | None:
    """The arrays ``write_arrays`` put in ``directory/folder``, mapped read-only; or, for a
    version stored before that layout, those of the ``.npz`` ``archive``, read into memory
    and marked read-only. None when the version has neither."""
    if (directory / folder).is_dir():
        return {p.stem: load_npy(p, mmap=True) for p in sorted((directory / folder).glob("*.npy"))}
    if not (directory / archive).exists():
        return None
    with np.load(directory / archive, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for arr in arrays.values():
        arr.setflags(write=False)
    return arrays
