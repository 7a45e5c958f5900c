"""The library never imports Ray: actors are the only Ray-aware layer."""

import subprocess
import sys


def test_library_imports_without_ray():
    code = ("import importlib, pkgutil, sys, worldvla_dist\n"
            "for m in pkgutil.walk_packages(worldvla_dist.__path__, 'worldvla_dist.'):\n"
            "    importlib.import_module(m.name)\n"
            "assert 'ray' not in sys.modules, 'worldvla_dist imported ray'\n"
            "print(len(list(pkgutil.walk_packages(worldvla_dist.__path__))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 10
