"""Secret values never show in log lines, reprs or exception messages."""

from __future__ import annotations

import io
import json
import logging
import pickle
import secrets

import pytest

from quantumedge.secrets.errors import SecretUnavailable
from quantumedge.secrets.masking import MASK, SecretData
from quantumedge.shared.logs import JsonFormatter, SecretMaskingFilter, install_masking_filter


def _value() -> str:
    return "v-" + secrets.token_hex(16)  # made at runtime: nothing key-like sits in the source


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(detail)s"))
    logger = logging.getLogger(f"qe-mask-test-{secrets.token_hex(4)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    install_masking_filter(logger)
    return logger, stream


def test_secret_data_repr_and_str_show_keys_only() -> None:
    value = _value()
    data = SecretData("quantumedge/exchange/binance-testnet", {"api_key": value, "api_secret": value[::-1]}, 3)
    assert data["api_key"] == value and dict(data)["api_secret"] == value[::-1]
    for text in (repr(data), str(data), f"{data}", repr([data]), repr({"d": data})):
        assert value not in text and value[::-1] not in text
        assert "api_key" in text and MASK in text and "version=3" in text
    with pytest.raises(KeyError) as err:
        data["nope"]
    assert value not in str(err.value)
    with pytest.raises(TypeError):
        pickle.dumps(data)  # pickling is a path to disk


def test_filter_masks_message_args_extras_and_exceptions(captured) -> None:
    logger, stream = captured
    value = _value()
    SecretData("p", {"k": value}, 1)  # reading a secret registers its values for masking
    logger.info("connecting with %s", value, extra={"detail": f"key={value}"})
    try:
        raise ValueError(f"bad key {value}")
    except ValueError:
        logger.exception("failed", extra={"detail": "-"})
    out = stream.getvalue()
    assert value not in out
    assert out.count(MASK) >= 3 and "Traceback" in out and "bad key" in out


def test_json_formatter_masks_registered_values() -> None:
    value = _value()
    SecretData("p", {"k": value}, 1)
    record = logging.makeLogRecord({"msg": "token %s", "args": (value,), "levelname": "INFO", "field": value})
    line = JsonFormatter("execution").format(record)
    assert value not in line
    assert json.loads(line)["field"] == MASK


def test_masking_filter_is_idempotent_per_handler() -> None:
    logger = logging.getLogger(f"qe-mask-idem-{secrets.token_hex(4)}")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    install_masking_filter(logger)
    install_masking_filter(logger)
    assert sum(isinstance(f, SecretMaskingFilter) for f in handler.filters) == 1


def test_secret_unavailable_names_path_and_reason_never_a_value() -> None:
    value = _value()
    SecretData("p", {"k": value}, 1)
    exc = SecretUnavailable("quantumedge/exchange/binance-live", f"vault said {value}", "error")
    assert "quantumedge/exchange/binance-live" in str(exc) and "vault said" in str(exc)
    assert value not in str(exc) and value not in repr(exc) and value not in exc.reason
    assert pickle.loads(pickle.dumps(exc)).path == exc.path  # noqa: S301 - our own bytes
