"""`quantumedge topics` - create the system's Kafka topics and keep its ACLs (one principal per service).

    quantumedge topics                   create the topics that are missing (idempotent)
    quantumedge topics --acls [--prune]  ... then create the ACLs of the plan; --prune also deletes every other
                                         grant the services' principals hold
    quantumedge topics --check           compare the cluster's ACLs with the plan; exit 1 on any difference
    quantumedge topics --print [--json]  print the plan (quantumedge.shared.bus.acls); talks to nothing

With kafka.security_protocol other than PLAINTEXT this runs as the Kafka admin: its credentials come from
Vault at kafka.credentials_path with service `admin` (quantumedge/kafka/admin), read with the vault settings
(an admin Vault token: no service or operator policy may read them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from quantumedge.settings import Settings, load_settings
from quantumedge.shared.bus import acls
from quantumedge.shared.config import ConfigError
from quantumedge.shared.errors import OperatorError, one_line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantumedge topics",
        description="Create the Kafka topics when missing and manage the services' ACLs (writers and readers "
        "of each topic come from quantumedge.shared.topics).",
    )
    parser.add_argument("--config", help="YAML settings file (else QE_CONFIG_FILE / QE_ env vars)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--acls", action="store_true", help="also create the ACLs of the plan (admin credentials)")
    action.add_argument("--check", action="store_true", help="compare the cluster's ACLs with the plan (exit 1)")
    action.add_argument("--print", dest="print_plan", action="store_true", help="print the ACL plan and exit")
    parser.add_argument("--prune", action="store_true", help="with --acls: delete the principals' other grants")
    parser.add_argument("--json", action="store_true", help="with --print: one JSON object per ACL")
    return parser


def topics_main(argv: Sequence[str] | None = None) -> int:
    """Entry point; 0 done, 1 ACLs differ from the plan (--check), 2 configuration or Kafka problem."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.prune and not args.acls:
        print("quantumedge topics: --prune goes with --acls", file=sys.stderr)
        return 2
    try:
        settings = load_settings(args.config)
        wanted = acls.plan(prefix=settings.kafka.topic_prefix, template=settings.kafka.principal_template)
        if args.print_plan:
            for entry in wanted:
                print(json.dumps(asdict(entry)) if args.json else entry.line())
            return 0
        return _against_cluster(settings, args, wanted)
    except (OperatorError, ConfigError) as exc:
        print(f"quantumedge topics: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        from kafka.errors import KafkaError

        if isinstance(exc, KafkaError | RuntimeError):
            print(f"quantumedge topics: kafka at {settings.kafka.bootstrap}: {exc!r}", file=sys.stderr)
            return 2
        raise


def _against_cluster(settings: Settings, args: argparse.Namespace, wanted: list[acls.AclEntry]) -> int:
    from quantumedge.shared.bus import make_bus
    from quantumedge.shared.bus.reachable import require_broker
    from quantumedge.shared.logs import setup_logging

    setup_logging(settings.log_level, service="topics")
    require_broker(settings.kafka.bootstrap)  # one line when nothing answers, before any client retries
    bus = make_bus(settings.model_copy(update={"bus": "kafka"}), identity="admin")
    try:
        if not args.check:
            bus.ensure_topics()
        if not (args.acls or args.check):
            return 0
        admin = bus.admin()  # type: ignore[attr-defined]
        prefix = settings.kafka.topic_prefix
        try:
            if args.check:
                missing, extra = acls.diff(wanted, acls.describe(admin, {e.principal for e in wanted}, prefix))
                for label, entries in (("MISSING", missing), ("EXTRA  ", extra)):
                    for entry in entries:
                        print(f"{label} {entry.line()}")
                print(f"{len(wanted) - len(missing)}/{len(wanted)} planned ACLs present, {len(extra)} extra")
                return 1 if missing or extra else 0
            created = acls.apply(admin, wanted, prefix)
            pruned = acls.prune(admin, wanted, prefix) if args.prune else []
            for entry in created:
                print(f"created {entry.line()}")
            for entry in pruned:
                print(f"deleted {entry.line()}")
            print(f"{len(wanted)} ACLs planned: {len(created)} created, {len(pruned)} deleted")
            return 0
        finally:
            admin.close()
    finally:
        bus.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(topics_main())
