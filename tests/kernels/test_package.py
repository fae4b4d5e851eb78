"""The kernels package on its own: the one erase-ratio check, its error type, and imports that go one way."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernels import EraseError, check_ratio


@pytest.mark.parametrize("ratio", [0, 100, -1, 150, 0.0, 100.0])
def test_ratio_outside_0_100_is_refused_with_the_fix(ratio):
    with pytest.raises(EraseError, match=r"outside \(0, 100\); set R to a percentage"):
        check_ratio(ratio)


def test_ratio_inside_is_returned_as_float():
    assert check_ratio(10) == 10.0 and isinstance(check_ratio(10), float)
    assert check_ratio(1e-9) == 1e-9 and check_ratio(99.999) == 99.999
    assert issubclass(EraseError, ValueError)


def _imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_kernels_never_import_aea():
    """The dependency goes aea -> kernels only: every kernels module imports without the aea package."""
    modules = _imported("import kernels, kernels.reference, kernels.fused_erase, kernels.aot")
    assert "kernels.fused_erase" in modules and "triton" in modules
    assert not {m for m in modules if m == "aea" or m.startswith("aea.")}


def test_config_checks_the_ratio_without_importing_torch():
    """``aea.config`` uses ``kernels.check_ratio``; importing the package must stay cheap for the CLI/Snakefile."""
    modules = _imported("import aea.config")
    assert "kernels" in modules and "torch" not in modules
