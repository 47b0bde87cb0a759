"""Writing outputs safely: complete or not at all, under temporary names beside the target, ordinary permissions.

- `write_folder` fills a temporary folder beside the target and renames it into place when complete, so an
  interrupted write leaves no folder that looks finished (only a hidden `.<name>.partial-*`); an existing folder
  with files in it is replaced only with `overwrite=True`, and never when it is (or holds) one of the inputs.
- `replace_file` does the same for one file.

Temporary files and folders are private when created (`mkstemp`, `mkdtemp`); the results get the permissions an
ordinary `open` or `mkdir` would give them (`0o666` / `0o777` less the umask).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from safetensors import SafetensorError

from .errors import OutputError


def current_umask() -> int:
    """The process's file-mode creation mask (read from /proc where possible, so that no thread sees it changed)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_error(path: str | os.PathLike, error: Exception) -> OutputError:
    """The `OutputError` for a failed write of `path`."""
    reason = getattr(error, "strerror", None) or str(error)
    return OutputError(
        f"{path}: cannot be written ({reason}); check that the output folder is writable and the disk has room."
    )


@contextlib.contextmanager
def replace_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write `path` through a temporary file beside it, renamed to `path` only if the block ends without an error."""
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{name}.partial-", dir=directory)
    except OSError as error:
        raise write_error(path, error) from error
    try:
        with os.fdopen(handle, "w+b") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(partial, 0o666 & ~current_umask())
        os.replace(partial, path)
    except OSError as error:
        raise write_error(path, error) from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _ordinary_permissions(folder: Path) -> None:
    """Give `folder` and everything in it the modes `mkdir` and `open` would have (temporary ones are private)."""
    mask = current_umask()
    os.chmod(folder, 0o777 & ~mask)
    for root, folders, files in os.walk(folder):
        for name in folders:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _contains(folder: Path, path: Path) -> bool:
    return folder == path or folder in path.parents


def write_folder(
    output_dir: str | os.PathLike,
    write: Callable[[Path], None],
    *,
    overwrite: bool = False,
    sources: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Run `write(folder)` on a new temporary folder beside `output_dir`, then move it to `output_dir`.

    Raises:
        `OutputError`: `output_dir` is a file, holds files and `overwrite` is False, is (or holds) one of `sources`,
            or cannot be written (read-only, disk full); nothing is left behind then.
    """
    target = Path(output_dir).expanduser()
    resolved, absolute = _resolved(target), Path(os.path.abspath(target))
    for source in sources:
        if source is None:
            continue
        # Both as named (a link inside the target would go with it) and where links lead.
        named, real = Path(os.path.abspath(Path(source).expanduser())), _resolved(source)
        if _contains(absolute, named) or _contains(resolved, real) or _contains(resolved, named):
            raise OutputError(
                f"{target}: is the conversion's input {source} (or holds it); writing there would overwrite the "
                "source. Choose another output folder."
            )
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is a file; choose a folder to write the converted model to.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputError(
            f"{target}: exists and holds files; choose a new or empty folder, or pass overwrite=True (--overwrite) "
            "to replace the whole folder once the conversion has succeeded."
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
    except OSError as error:
        raise OutputError(
            f"{target}: cannot write in {parent} ({error.strerror or error}); choose a writable folder."
        ) from error
    try:
        write(staging)
    except (OSError, SafetensorError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = getattr(error, "strerror", None) or str(error)
        raise OutputError(
            f"{target}: writing the converted model failed ({reason}); check that the disk has room and the folder "
            "is writable. Nothing was written."
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _ordinary_permissions(staging)
    previous = None
    try:
        if target.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.previous-", dir=parent))
            os.replace(target, previous / target.name)
        os.replace(staging, target)
    except OSError as error:
        if previous is not None and (previous / target.name).exists() and not target.exists():
            os.replace(previous / target.name, target)  # put the old folder back
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"{target}: moving the converted model into place failed ({error.strerror or error}); the previous "
            "folder, if any, is unchanged."
        ) from error
    finally:
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    return target


__all__ = ["current_umask", "replace_file", "write_error", "write_folder"]
