"""What a run may do, one flag per behaviour, chosen once at wiring time from the kind of run.

Code deep in the services asks `settings.behaviours.<flag>` about the one behaviour it has, never which kind of
run this is: `embedded` (QE_EMBEDDED, `quantumedge up`) keeps meaning what it means to users, and the settings
root (quantumedge/settings.py, Settings.behaviours) is the one place that turns it into these flags.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviours:
    # Secrets are read from Vault at all; False: nothing logs in, and asking for a secret raises
    # (secrets.errors.EmbeddedSecretsError) instead of starting without it.
    reads_vault: bool = True
    # Operator token hashes may come from Vault (else only vault.operator_token_sha256 applies).
    operator_tokens_from_vault: bool = True
    # Signing keys may come from Vault (else only the signing.* settings or the in-process ephemeral pair).
    signing_keys_from_vault: bool = True
    # Notification secrets (webhook URLs, bot token) may come from Vault (else only notify.* settings).
    notify_secrets_from_vault: bool = True
    # Kafka may run PLAINTEXT / SASL_PLAINTEXT without kafka.allow_plaintext (a local, single-process run).
    kafka_plaintext_allowed: bool = False
    # Only the paper venue may trade (no exchange, no exchange keys).
    paper_venue_only: bool = False


DEPLOYED = Behaviours()
# `quantumedge up`: one process on local defaults, no Vault, no exchange.
EMBEDDED = Behaviours(
    reads_vault=False,
    operator_tokens_from_vault=False,
    signing_keys_from_vault=False,
    notify_secrets_from_vault=False,
    kafka_plaintext_allowed=True,
    paper_venue_only=True,
)


def behaviours_for(*, embedded: bool) -> Behaviours:
    """The flags of a run: EMBEDDED for `quantumedge up` (settings.embedded), DEPLOYED otherwise."""
    return EMBEDDED if embedded else DEPLOYED
