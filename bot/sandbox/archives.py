"""Tar archives that carry files into a container through the Docker API (never a bind mount).

The daemon may not share the bot's filesystem (the bot in a container holding the host's socket, or
`DOCKER_HOST` naming another machine), so a checkout, extra test files, the report plugin and a CA
bundle travel as one tar stream on the container's stdin, extracted at `/` inside it.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO

SPOOL_BYTES = 32 * 1024 * 1024


class Archive:
    """A tar stream being written to a spooled temporary file (memory first, disk past 32 MiB)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        self._tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)

    def add_tree(self, root: Path, prefix: str, *, include_git: bool = False) -> None:
        """Add every file under `root` as `prefix/...`, symlinks as symlinks (never followed)."""
        root = root.resolve()
        for directory, dirs, files in os.walk(root):
            here = Path(directory)
            if not include_git and ".git" in dirs:
                dirs.remove(".git")
            dirs.sort()
            for name in [*dirs, *sorted(files)]:
                path = here / name
                member = self._tar.gettarinfo(str(path), arcname=f"{prefix}/{path.relative_to(root).as_posix()}")
                if member is None:  # sockets, fifos
                    continue
                _normalise(member)
                if member.isfile():
                    with open(path, "rb") as handle:
                        self._tar.addfile(member, handle)
                else:
                    self._tar.addfile(member)

    def add_text(self, name: str, text: str | bytes, mode: int = 0o644) -> None:
        """Add one file with this content."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        member = tarfile.TarInfo(name)
        member.size = len(data)
        member.mode = mode
        _normalise(member)
        self._tar.addfile(member, io.BytesIO(data))

    def add_files(self, prefix: str, files: Mapping[str, str]) -> None:
        """Add repository-relative path → text, each kept inside `prefix`."""
        for relative, text in files.items():
            self.add_text(f"{prefix}/{safe_relative(relative)}", text)

    def finish(self) -> IO[bytes]:
        """Close the tar and return the file, rewound."""
        self._tar.close()
        self.file.seek(0)
        return self.file


def safe_relative(relative: str) -> PurePosixPath:
    """A repository-relative path that cannot leave the repository."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"extra file path must stay inside the repository: {relative!r}")
    return path


def _normalise(member: tarfile.TarInfo) -> None:
    # Extracted by the sandbox user: ownership is theirs, and the owner may always read and write.
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mode |= 0o600 if not member.isdir() else 0o700
