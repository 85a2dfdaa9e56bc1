"""Content-addressed code storage: validated packages, extracted once, read-only.

Layout under the data directory::

    code/<sha256>/        the extracted package (a zip's files, or function.wasm), read-only
    code/.staging/        extraction in progress; renamed into place atomically when complete

A package is validated before anything is written where the registry can see it, so a bad
upload changes nothing. Checks (each names the limit in its error):
zip-slip (absolute paths, `..`, symlinks), zip bombs (declared size over the limit, and a real
size that exceeds the declared one), too many files, a truncated or garbage archive, and for
WebAssembly the module magic and version.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile

from runner.errors import InvalidCodePackage

MAX_PACKAGE_BYTES = 50 * 1024 * 1024  # Lambda's limit for a direct zip upload
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit for unzipped code
MAX_FILES = 20_000
MAX_RATIO = 200  # a file compressing better than 200:1 is a bomb, not code
WASM_MAGIC = b"\0asm"
WASM_FILE = "function.wasm"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CodeStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.staging = os.path.join(root, ".staging")
        os.makedirs(self.staging, exist_ok=True)
        # Leftovers of an extraction interrupted by a crash are never referenced: drop them.
        for leftover in os.listdir(self.staging):
            shutil.rmtree(os.path.join(self.staging, leftover), ignore_errors=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.root, digest)

    def put(self, data: bytes, runtime: str) -> tuple[str, str]:
        """Validate and store a package; returns (sha256, code_dir). Idempotent per content."""
        if not data:
            raise InvalidCodePackage("code", "the package is empty; upload a zip (or a .wasm module)")
        if len(data) > MAX_PACKAGE_BYTES:
            raise InvalidCodePackage(
                "code", f"{len(data)} bytes exceeds the {MAX_PACKAGE_BYTES}-byte package limit"
            )
        is_wasm = data[:4] == WASM_MAGIC
        # Checks that depend on the runtime come before the dedup shortcut below: the same bytes
        # may already be stored for another function with another runtime.
        if is_wasm and runtime != "wasm":
            raise InvalidCodePackage(
                "code", f"a WebAssembly module was given for runtime {runtime!r}; "
                "use --runtime wasm, or upload a zip"
            )
        digest = sha256(data)
        final = self.path(digest)
        if os.path.isdir(final):
            if runtime == "wasm" and not os.path.exists(os.path.join(final, WASM_FILE)):
                raise InvalidCodePackage("code", "a wasm package must hold exactly one .wasm module, found 0")
            return digest, final
        work = tempfile.mkdtemp(dir=self.staging)
        try:
            if is_wasm:
                _check_wasm_header(data)
                with open(os.path.join(work, WASM_FILE), "wb") as f:
                    f.write(data)
            else:
                _extract_zip(data, work)
                if runtime == "wasm":
                    _normalise_wasm_zip(work)
            _make_read_only(work)
            try:
                os.rename(work, final)
            except OSError:
                if not os.path.isdir(final):  # not a concurrent identical upload: a real failure
                    raise
                _remove(work)
        except BaseException:
            _remove(work)
            raise
        return digest, final

    def remove(self, digest: str) -> None:
        _remove(self.path(digest))

    def digests(self) -> set[str]:
        return {d for d in os.listdir(self.root) if not d.startswith(".")}


def _check_wasm_header(data: bytes) -> None:
    if len(data) < 8 or data[4:8] not in (b"\x01\x00\x00\x00", b"\x0d\x00\x01\x00"):
        raise InvalidCodePackage("code", "not a WebAssembly binary (bad version after the magic)")


def _extract_zip(data: bytes, dest: str) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidCodePackage(
            "code", f"not a valid zip archive ({exc}); zip the code directory, or pass the directory"
        ) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise InvalidCodePackage("code", f"{len(infos)} entries exceeds the {MAX_FILES}-file limit")
        declared = 0
        for info in infos:
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
                raise InvalidCodePackage(
                    "code", f"entry {name!r} escapes the package (absolute path or '..'); "
                    "rebuild the zip with relative paths"
                )
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InvalidCodePackage(
                    "code", f"entry {name!r} is a symbolic link; links are not allowed in packages"
                )
            declared += info.file_size
            if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_RATIO \
                    and info.file_size > 1024 * 1024:
                raise InvalidCodePackage(
                    "code", f"entry {name!r} expands {info.file_size // max(info.compress_size, 1)}x; "
                    f"ratios over {MAX_RATIO}x are rejected as a zip bomb"
                )
        if declared > MAX_UNZIPPED_BYTES:
            raise InvalidCodePackage(
                "code", f"unzipped size {declared} bytes exceeds the {MAX_UNZIPPED_BYTES}-byte limit"
            )
        written = 0
        for info in infos:
            target = os.path.join(dest, info.filename)
            # Count real bytes as they stream out: a forged header cannot make us write more
            # than the declared size of the entry.
            remaining = info.file_size
            try:
                if info.is_dir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while True:
                        chunk = src.read(1 << 16)
                        if not chunk:
                            break
                        remaining -= len(chunk)
                        written += len(chunk)
                        if remaining < 0 or written > MAX_UNZIPPED_BYTES:
                            raise InvalidCodePackage(
                                "code", f"entry {info.filename!r} holds more data than it declares; "
                                "rejected as a zip bomb"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
                raise InvalidCodePackage("code", f"entry {info.filename!r} is corrupt ({exc})") from None
            except (RuntimeError, NotImplementedError) as exc:  # encrypted, unknown compression
                raise InvalidCodePackage("code", f"entry {info.filename!r} cannot be read ({exc}); "
                                         "zip it without encryption, with deflate or store") from None
            except OSError as exc:
                # The package's own shape (a file and a folder of one name, a name too long),
                # or bad compressed data (bz2/lzma: no errno). A full disk is not the package's
                # fault: it propagates (errors.storage_full names it).
                if exc.errno not in (None, errno.EEXIST, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG):
                    raise
                raise InvalidCodePackage("code", f"entry {info.filename!r} cannot be unpacked "
                                         f"({exc.strerror or exc})") from None


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _normalise_wasm_zip(work: str) -> None:
    """A wasm zip must hold exactly one module; it is renamed to function.wasm."""
    modules = [
        os.path.join(d, f) for d, _, files in os.walk(work) for f in files if f.endswith(".wasm")
    ]
    if len(modules) != 1:
        raise InvalidCodePackage(
            "code", f"a wasm package must hold exactly one .wasm module, found {len(modules)}"
        )
    with open(modules[0], "rb") as f:
        head = f.read(8)
    if head[:4] != WASM_MAGIC:
        raise InvalidCodePackage("code", f"{os.path.basename(modules[0])} is not a WebAssembly binary")
    _check_wasm_header(head)
    os.rename(modules[0], os.path.join(work, WASM_FILE))


def _make_read_only(root: str) -> None:
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            os.chmod(p, os.stat(p).st_mode & 0o555 | 0o444)
        os.chmod(d, 0o555)


def _remove(path: str) -> None:
    if not os.path.exists(path):
        return
    for d, dirs, _ in os.walk(path):
        os.chmod(d, 0o755)
    shutil.rmtree(path, ignore_errors=True)
