"""Finding and reading the files of the seeds folder without reading anything else.

Whatever answers a question may be quoted to anyone who can ask, so only regular files whose
real path lies inside the seeds folder are read: a link to ``/etc/passwd`` or to a folder
elsewhere is skipped (unless ``seeds.follow_symlinks_outside`` says otherwise, and then the
report names those files). Named pipes, sockets and devices are told apart by ``stat`` and
never opened (opening a FIFO waits for a writer for ever). Dangling links and link loops are
skipped with a reason, never followed round.

A file is opened once more at read time, non-blocking, and checked with ``fstat`` to be the
same regular file that was listed: a link swapped in between is refused, not followed.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from qa_bot.errors import SeedsError

ARTICLE_SUFFIXES = (".txt", ".md", ".html", ".htm")

#: How ``open`` is asked: never block on a FIFO, never become a terminal's controller.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


@dataclass(frozen=True)
class SkippedFile:
    """A file that could not be used, with the reason shown to the user."""

    path: str
    reason: str


@dataclass(frozen=True)
class SourceFile:
    """A candidate article file found under the seeds folder.

    ``identity`` is the (device, inode) pair seen when it was listed: the file opened at read
    time must be that one. ``outside`` marks a file reached through a link out of the folder
    (read only when the operator allowed it).
    """

    path: Path
    rel: str
    size: int
    mtime_ns: int
    identity: tuple[int, int] | None = None
    outside: bool = False


class UnsafeFileError(OSError):
    """The path is not (or no longer) the regular file that was listed; it was not read."""


def describe_kind(mode: int) -> str:
    """What a non-regular file is, in words an operator knows."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _inside(real: str, root: str) -> bool:
    return real == root or os.path.commonpath([real, root]) == root


@dataclass(frozen=True)
class _Entry:
    """One directory entry after following a link (if it is one)."""

    st: os.stat_result
    outside: bool
    linked: bool


def _follow(path: str, lst: os.stat_result, root: str, parent_outside: bool) -> _Entry | str:
    """The entry's target and whether it lies outside the folder, or why it cannot be used."""
    if not stat.S_ISLNK(lst.st_mode):
        return _Entry(lst, parent_outside, linked=False)
    try:
        target = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop: not followed"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "a dangling symlink (its target does not exist)"
        return f"cannot follow the symlink: {exc.strerror or exc}"
    return _Entry(target, not _inside(os.path.realpath(path), root), linked=True)


def _list(folder: str) -> list[os.DirEntry[str]] | str:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        return f"cannot list the folder: {exc.strerror or exc}"


def discover(
    seeds_dir: Path, *, follow_outside: bool = False
) -> tuple[list[SourceFile], list[SkippedFile]]:
    """List article files recursively, in a stable order (a folder's files, then its
    subfolders), following links only where the rules above allow."""
    if not seeds_dir.exists():
        raise SeedsError(f"seeds folder not found: {seeds_dir}. Create it and put articles in it.")
    if not seeds_dir.is_dir():
        raise SeedsError(f"seeds path is not a folder: {seeds_dir}")
    root = str(seeds_dir.resolve())
    found: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    root_st = os.stat(root)
    seen_dirs = {(root_st.st_dev, root_st.st_ino)}
    stack: list[tuple[str, str, bool]] = [(root, "", False)]
    while stack:
        folder, prefix, folder_outside = stack.pop()
        entries = _list(folder)
        if isinstance(entries, str):
            skipped.append(SkippedFile(prefix.rstrip("/") or ".", entries))
            continue
        subfolders: list[tuple[str, str, bool]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            try:
                lst = entry.stat(follow_symlinks=False)
            except OSError as exc:
                skipped.append(SkippedFile(rel, f"cannot read: {exc.strerror or exc}"))
                continue
            followed = _follow(entry.path, lst, root, folder_outside)
            is_article = entry.name.lower().endswith(ARTICLE_SUFFIXES)
            if isinstance(followed, str):
                skipped.append(SkippedFile(rel, followed))
                continue
            st = followed.st
            if stat.S_ISDIR(st.st_mode):
                reason = _folder_refusal(followed, follow_outside, seen_dirs)
                if reason:
                    skipped.append(SkippedFile(rel, reason))
                else:
                    seen_dirs.add((st.st_dev, st.st_ino))
                    subfolders.append((entry.path, rel + "/", followed.outside))
                continue
            if not is_article:
                continue
            reason = _file_refusal(followed, follow_outside)
            if reason:
                skipped.append(SkippedFile(rel, reason))
                continue
            identity = (st.st_dev, st.st_ino)
            source = SourceFile(
                Path(entry.path), rel, st.st_size, st.st_mtime_ns, identity, followed.outside
            )
            found.append(source)
        stack.extend(reversed(subfolders))
    return found, skipped


def _folder_refusal(entry: _Entry, follow_outside: bool, seen: set[tuple[int, int]]) -> str | None:
    if entry.outside and not follow_outside:
        return "a link to a folder outside the seeds folder: not followed"
    if (entry.st.st_dev, entry.st.st_ino) in seen:
        return "a symlink loop: this folder was already searched"
    return None


def _file_refusal(entry: _Entry, follow_outside: bool) -> str | None:
    regular = stat.S_ISREG(entry.st.st_mode)
    if entry.outside and not follow_outside:
        what = "a file" if regular else describe_kind(entry.st.st_mode)
        return f"a link to {what} outside the seeds folder: not read"
    if not regular:
        via = "a link to " if entry.linked else ""
        return f"{via}{describe_kind(entry.st.st_mode)}, not a regular file: not opened"
    return None


def read_regular(path: Path, limit: int, identity: tuple[int, int] | None = None) -> bytes:
    """The bytes of a regular file, at most ``limit`` + 1 of them (so "too large" shows).

    Opened non-blocking and checked with ``fstat`` after opening: anything but a regular file
    (or another file than ``identity``, when given) raises :class:`UnsafeFileError` unread.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{describe_kind(st.st_mode)}, not a regular file: not read")
        if identity is not None and (st.st_dev, st.st_ino) != identity:
            raise UnsafeFileError("replaced by another file since it was listed: not read")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_inside(
    seeds_dir: Path, name: str, limit: int, *, follow_outside: bool = False
) -> bytes | None:
    """A file of the seeds folder named by the operator (the metadata sidecar), read by the
    rules of :func:`discover`: None when there is no such file, :class:`UnsafeFileError` when
    it is one that must not be read (a link out of the folder, a FIFO, a dangling link)."""
    path = seeds_dir / name
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return None
    root = str(seeds_dir.resolve())
    parent_outside = not _inside(os.path.realpath(path.parent), root)
    followed = _follow(str(path), lst, root, parent_outside)
    if isinstance(followed, str):
        raise UnsafeFileError(followed)
    reason = _file_refusal(followed, follow_outside)
    if reason:
        raise UnsafeFileError(reason)
    return read_regular(path, limit, (followed.st.st_dev, followed.st.st_ino))
