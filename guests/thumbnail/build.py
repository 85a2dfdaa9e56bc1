"""Build the thumbnail example's package: app.py plus boto3 and Pillow (and what they import),
copied from this Python's site-packages, since a guest sees the standard library and its own
package only. botocore's service models are cut to S3's (the rest is ~30 MB the function never
reads). The guest runs on the same Python as the server, so Pillow's compiled parts fit.

    python guests/thumbnail/build.py OUT.zip     then   runner deploy thumbnail OUT.zip ...

The zip stores shared libraries uncompressed: one of Pillow's (libXau) compresses over 200x,
which the runner's code store refuses as a zip bomb when deflated.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "PIL",
            "six", "certifi")
BOTOCORE_MODELS = ("s3", "sts")


def build(zip_path: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "pkg")
        _assemble(out)
        with zipfile.ZipFile(zip_path, "w") as zf:
            for root, dirs, files in os.walk(out):
                dirs.sort()
                for f in sorted(files):
                    full = os.path.join(root, f)
                    shared = ".so" in f
                    zf.write(full, os.path.relpath(full, out),
                             zipfile.ZIP_STORED if shared else zipfile.ZIP_DEFLATED)
    return zip_path


def _assemble(out: str) -> None:
    os.makedirs(out)
    shutil.copy(os.path.join(HERE, "app.py"), out)
    site = None
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            if name in ("six", "certifi"):
                continue  # optional for some versions
            raise SystemExit(f"build.py: {name} is not installed in {sys.executable}")
        if spec.submodule_search_locations:
            src = list(spec.submodule_search_locations)[0]
            site = os.path.dirname(src)
            shutil.copytree(src, os.path.join(out, name),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(spec.origin, out)
    for libs in ("pillow.libs", "Pillow.libs"):  # the shared libraries Pillow's wheel bundles
        if site and os.path.isdir(os.path.join(site, libs)):
            shutil.copytree(os.path.join(site, libs), os.path.join(out, libs))
    data = os.path.join(out, "botocore", "data")
    for entry in os.listdir(data):
        path = os.path.join(data, entry)
        if os.path.isdir(path) and entry not in BOTOCORE_MODELS:
            shutil.rmtree(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(build(sys.argv[1]))
