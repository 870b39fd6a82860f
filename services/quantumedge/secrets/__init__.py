"""Secrets from Vault / OpenBao (KV v2), in memory only, never prompted for.

    from quantumedge.secrets import connect, require_secrets, SecretUnavailable
    secrets = require_secrets(settings, "execution")        # {} for paper; raises for testnet/live without them
    store = connect(settings.vault, "execution")            # SecretStore: read / version / watch

Names are loaded lazily so importing the settings model (done by shared.config) does not import hvac.
"""

from __future__ import annotations

import importlib
from typing import Any

# module -> the public names it provides
_MODULES = {
    "quantumedge.secrets.store": ("connect", "SecretStore", "Watch"),
    "quantumedge.secrets.require": ("require_secrets", "ServiceSecrets", "SecretsConfigError"),
    "quantumedge.secrets.errors": ("SecretUnavailable", "SecretsError", "SecretsRequiredError", "EmbeddedSecretsError"),
    "quantumedge.secrets.masking": ("SecretData",),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quantumedge.secrets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
