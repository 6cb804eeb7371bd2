"""The driver's reads and writes in the work_dir, whatever the file: whole files written
atomically, appends that are whole or cut off again, journals of JSON lines, private
directories, and the room left on the filesystem. Which file is which is
:mod:`batchpool._layout`'s to say; what each holds, :mod:`batchpool.session`'s.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from pathlib import Path
from typing import Union

from . import _layout

PathLike = Union[str, "os.PathLike[str]"]


def private_directory(work_dir: Path, key: str, prefix: str = "") -> Path:
    """A new directory in ``work_dir`` (:func:`batchpool._layout.directory_name`), mode 0700.
    When the name is taken (the same map again within a second: the summaries of
    successful maps stay), the next ``_N`` after the highest taken."""
    work_dir = work_dir.absolute()
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    first = _layout.directory_name(prefix, stamp, key)
    with contextlib.suppress(FileExistsError):
        return _new_private(work_dir / first)
    highest = max(_suffix(name, first) for name in [first, *os.listdir(work_dir)])
    for n in range(highest + 1, highest + 1000):
        with contextlib.suppress(FileExistsError):  # taken since: another driver
            return _new_private(work_dir / _layout.directory_name(prefix, stamp, key, n))
    raise FileExistsError(f"no free directory name for {key} in {work_dir}")


def _new_private(path: Path) -> Path:
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
    return path


def _suffix(name: str, first: str) -> int:
    """N of a directory named ``first_N``, 0 for ``first``, -1 for any other name."""
    if name == first:
        return 0
    head, _, n = name.rpartition("_")
    return int(n) if head == first and n.isdigit() else -1


NO_ROOM_BYTES = 64 * 1024
"""Less free space than this on the session's filesystem is no room for a result."""


def no_room_left(path: Path) -> bool:
    """Whether the filesystem of ``path`` is read-only or (nearly) full."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return False  # not there: a question for whoever writes next
    return bool(stat.f_flag & os.ST_RDONLY) or stat.f_bavail * stat.f_frsize < NO_ROOM_BYTES


def describe_filesystem(path: Path) -> str:
    """``"tmpfs mounted at /scratch, 2.0 MB, 12 kB free"``: what a user needs to know
    about the filesystem of ``path`` to make room on it."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    mount = path
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    kind = "a filesystem"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[1] == str(mount):
                kind = fields[2]  # the last mount at a point is the one in effect
    try:
        stat = os.statvfs(path)
    except OSError as error:
        return f"{kind} mounted at {mount}: {error.strerror}"
    size, free = stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize
    read_only = ", read-only" if stat.f_flag & os.ST_RDONLY else ""
    return f"{kind} mounted at {mount}, {_bytes(size)}, {_bytes(free)} free{read_only}"


def _bytes(n: float) -> str:
    units = ("bytes", "kB", "MB", "GB", "TB")
    power = 0
    while n >= 1000 and power < len(units) - 1:
        n, power = n / 1000, power + 1
    return f"{n:.0f} bytes" if power == 0 else f"{n:.1f} {units[power]}"


def file_size(path: PathLike) -> int:
    """The size of ``path``; 0 if there is no such file."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def write_file(path: PathLike, payload: bytes) -> None:
    """Write a private file atomically."""
    _layout.write_atomically(os.fspath(path), payload)


def append_durably(path: PathLike, data: bytes) -> None:
    """Append ``data`` to a private file whole or not at all: an append that fails (a full
    disk, a quota) is cut off again before the error is raised."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):  # the error raised says what happened
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def append_text(path: PathLike, text: str) -> None:
    append_durably(path, text.encode("utf-8"))


def read_json_lines(path: PathLike) -> list[dict]:
    """The lines of a journal; a line that is not JSON (torn by a crash) is skipped."""
    data = _layout.read_file(os.fspath(path))
    if data is None:
        return []
    rows = []
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_text(path: PathLike) -> str:
    """A text file another host writes (a job's log), read whole; "" if it is not there."""
    data = _layout.read_file(os.fspath(path))
    return "" if data is None else data.decode(errors="replace")
