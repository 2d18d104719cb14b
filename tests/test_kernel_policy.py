"""CI's kernel policy: under FLOWLAKE_REQUIRE_KERNEL=1 a skipped kernel test fails; elsewhere it skips."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
TESTS = """
import pytest

@pytest.mark.kernel
def test_needs_kernel():
    pytest.skip("no BPF here")

def test_plain_skip():
    pytest.skip("unrelated")

@pytest.mark.kernel
@pytest.mark.xfail(strict=True, reason="known gap")
def test_known_gap():
    assert False
"""


@pytest.mark.parametrize(("required", "outcome"), [
    pytest.param("1", {"passed": 0, "failed": 1, "skipped": 1, "xfailed": 1}, id="ci"),
    pytest.param("0", {"passed": 0, "failed": 0, "skipped": 2, "xfailed": 1}, id="elsewhere"),
])
def test_skipped_kernel_test_is_a_failure_only_in_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                     required: str, outcome: dict[str, int]) -> None:
    monkeypatch.setenv("FLOWLAKE_REQUIRE_KERNEL", required)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    kernel: needs BPF\n")
    pytester.makepyfile(test_policy=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(**outcome)
