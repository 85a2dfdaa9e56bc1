"""Code as callers hand it to `Runner.deploy`: bytes, a directory (zipped here, as
`runner deploy DIR` does) or a file (a zip, or a .wasm module). The code store (storage/code.py)
validates and extracts what comes out."""

from __future__ import annotations

import io
import os
import zipfile

from runner.errors import InvalidParameter


def zip_directory(path: str) -> bytes:
    """Zip a code directory the way `runner deploy DIR` does (relative paths, no links)."""
    if not os.path.isdir(path):
        raise InvalidParameter("code", f"{path!r} is not a directory")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
            for f in sorted(files):
                full = os.path.join(root, f)
                if os.path.islink(full):
                    continue
                zf.write(full, os.path.relpath(full, path))
    return buf.getvalue()


def read_code(code: bytes | str | os.PathLike | None) -> bytes | None:
    """Code from bytes, a directory (zipped), or a file (a zip or a .wasm module)."""
    if code is None or isinstance(code, bytes):
        return code
    path = os.fspath(code)
    if os.path.isdir(path):
        return zip_directory(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise InvalidParameter("code", f"cannot read {path!r}: {exc.strerror}") from None
