"""The Vault layout (paths, roles): defined in quantumedge.shared.vault_layout, which shared reads too (shared
never imports secrets); re-exported here for the secrets package and its callers."""

from quantumedge.shared.vault_layout import *  # noqa: F403
from quantumedge.shared.vault_layout import __all__  # noqa: F401
