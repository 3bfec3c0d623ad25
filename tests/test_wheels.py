"""The wheels `make wheels` puts in dist/ (`make test` builds them first): one per supported
CPython installed here, each manylinux-tagged and linked against nothing newer than that
tag allows, each installing into a fresh virtualenv of its version and running a program
there; and the package metadata says exactly which versions are supported and tested."""

import glob
import os
import re
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = os.path.join(ROOT, "dist")
WHEELS = sorted(glob.glob(os.path.join(DIST, "ferroloop-*.whl")))
SUPPORTED = ("3.11", "3.12", "3.13", "3.14", "3.15")
# manylinux2014 is glibc 2.17.
MAX_GLIBC = (2, 17)

pytestmark = pytest.mark.skipif(not WHEELS, reason="no wheels in dist/: `make wheels` builds "
                                                   "them (`make test` does it first)")

SMOKE = textwrap.dedent("""
    import asyncio, sys
    import ferroloop

    assert "site-packages" in ferroloop.__file__, ferroloop.__file__

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        reply = await reader.readexactly(4)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return reply, type(asyncio.get_running_loop()).__name__

    async def echo(reader, writer):
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    print(ferroloop.run(main()), ferroloop.build_profile, "%d.%d" % sys.version_info[:2])
""")


def python_for(version):
    """A CPython of `version` that runs, found as the Makefile finds them."""
    pyenv = glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}"))
    for path in [f"python{version}", *sorted(pyenv)]:
        try:
            subprocess.run([path, "-c", "import sys"], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        return path
    return None


def wheel_version(path):
    tag = re.search(r"-cp3(\d+)-cp3\d+-", os.path.basename(path)).group(1)
    return f"3.{tag}"


def test_one_wheel_per_installed_supported_cpython():
    installed = {v for v in SUPPORTED if python_for(v)}
    assert sorted(wheel_version(w) for w in WHEELS) == sorted(installed)


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_wheel_is_manylinux_and_needs_no_newer_glibc(wheel, tmp_path):
    assert re.search(r"manylinux2014_x86_64\.manylinux_2_17_x86_64\.whl$", wheel), wheel
    with zipfile.ZipFile(wheel) as zf:
        [library] = [n for n in zf.namelist() if n.endswith(".so")]
        zf.extract(library, tmp_path)
    symbols = subprocess.run(["objdump", "-T", str(tmp_path / library)], capture_output=True,
                             text=True, check=True).stdout
    versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([\d.]+)", symbols)}
    assert versions and max(versions) <= MAX_GLIBC, sorted(versions)


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_wheel_metadata_says_what_is_tested(wheel):
    with zipfile.ZipFile(wheel) as zf:
        [name] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(name).decode()
    assert "Requires-Python: >=3.11\n" in metadata
    versions = re.findall(r"^Classifier: Programming Language :: Python :: (3\.\d+)$",
                          metadata, re.M)
    assert tuple(versions) == SUPPORTED


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_wheel_installs_and_runs_in_a_fresh_virtualenv(wheel, tmp_path):
    version = wheel_version(wheel)
    python = python_for(version)
    assert python, f"no CPython {version} to install {wheel} into"
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--no-index", wheel], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    smoke = subprocess.run([str(venv / "bin" / "python"), "-W", "error", "-c", SMOKE],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.stdout == f"(b'ping', 'Loop') release {version}\n"
