"""Nothing prompts: with input()/getpass() booby-trapped, missing input is a clear error naming what is missing."""

from __future__ import annotations

import builtins
import getpass
import io

import pytest

from quantumedge.secrets.errors import SecretsRequiredError
from quantumedge.secrets.require import require_secrets
from quantumedge.secrets_cli import secrets_main
from quantumedge.settings import load_settings


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    def trap(*_a: object, **_k: object) -> str:
        raise AssertionError("something prompted for input")

    monkeypatch.setattr(builtins, "input", trap)
    monkeypatch.setattr(getpass, "getpass", trap)
    for name in ("QE_VAULT_ADDR", "QE_VAULT_TOKEN", "QE_OPERATOR_TOKEN", "QE_NEW_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", _Tty())  # an operator's terminal: must never be read


def test_init_without_operator_token_names_the_env_var(capsys: pytest.CaptureFixture[str]) -> None:
    assert secrets_main(["init"]) == 2
    assert "QE_OPERATOR_TOKEN" in capsys.readouterr().err


def test_init_with_stdin_flag_on_a_terminal_refuses_instead_of_waiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert secrets_main(["init", "--operator-token-stdin"]) == 2
    assert "stdin is not a pipe" in capsys.readouterr().err


def test_rotate_without_values_names_the_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert secrets_main(["rotate", "quantumedge/exchange/binance-testnet"]) == 2
    err = capsys.readouterr().err
    assert "--from-env" in err and "--stdin-json" in err
    assert secrets_main(["rotate", "quantumedge/exchange/binance-testnet", "--from-env", "api_key=QE_NEW_KEY"]) == 2
    assert "QE_NEW_KEY is not set" in capsys.readouterr().err
    assert secrets_main(["rotate", "quantumedge/exchange/binance-testnet", "--stdin-key", "api_secret"]) == 2
    assert "stdin is not a pipe" in capsys.readouterr().err


def test_commands_without_vault_address_say_so(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("QE_OPERATOR_TOKEN", "o" * 32)
    assert secrets_main(["check"]) == 2
    assert "QE_VAULT_ADDR" in capsys.readouterr().err
    assert secrets_main(["init"]) == 2
    assert "QE_VAULT_ADDR" in capsys.readouterr().err


def test_service_start_without_secret_raises_instead_of_asking() -> None:
    with pytest.raises(SecretsRequiredError, match="binance-live"):
        require_secrets(load_settings(execution={"venue": "live"}), "execution")


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        secrets_main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(word in out for word in ("init", "check", "rotate"))
