"""A delegated command whose optional dependency is not installed stops with one line, not a traceback."""

from __future__ import annotations

import pytest

from quantumedge import cli
from quantumedge.shared.errors import OperatorError


def test_a_missing_extra_is_an_operator_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # A module that imports a library this venv lacks, as quantumedge.training does in the serving image.
    monkeypatch.setitem(cli.DELEGATED, "train", ("qe_absent_extra_for_test", "train_main", "train"))
    with pytest.raises(OperatorError) as caught:
        cli._dispatch("train", None, ["train", "--help"])
    assert caught.value.reason == "missing_dependency"
    assert "qe_absent_extra_for_test" in caught.value.message
    assert cli.main(["train", "--help"]) == 2


def test_a_missing_module_of_the_project_itself_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # A broken install of quantumedge is a bug to see in full, not an extra to install.
    monkeypatch.setitem(cli.DELEGATED, "train", ("quantumedge.absent_for_test", "train_main", "train"))
    with pytest.raises(ModuleNotFoundError):
        cli._dispatch("train", None, ["train"])
