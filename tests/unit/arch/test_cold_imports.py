"""Cold start (issue 16): `serve <service>` loads what that service runs, not what an option it has off needs.

Each service must report SERVING within 2 s of its container starting, and importing a client it does not use
was most of that: risk loaded the `openai` client without a moderator, execution the Binance REST and websocket
clients on the paper venue, ingest pyarrow without recording. Each import is checked in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

NOT_LOADED = {
    "risk": ["openai", "aiohttp", "pyarrow", "onnxruntime"],
    "execution": ["openai", "requests", "websockets", "pyarrow", "onnxruntime"],
    "ingest": ["openai", "pyarrow", "onnxruntime"],
}


@pytest.mark.parametrize("service", sorted(NOT_LOADED))
def test_serving_a_service_does_not_import_clients_it_does_not_use(service: str) -> None:
    probe = (
        "import sys, quantumedge.runner, quantumedge.services_registry as r, importlib; "
        f"importlib.import_module(r._CLASSES[{service!r}].partition(':')[0]); "
        f"print(','.join(m for m in {NOT_LOADED[service]!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == ""
