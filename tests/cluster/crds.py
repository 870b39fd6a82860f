"""The CRDs the chart's full values use, installed before the chart as a real cluster would have them.

- keda.sh ScaledObject: its schema is converted from the models cloudcoil generated from KEDA's own CRD
  (the same models the offline chart tests validate with), into a structural OpenAPI schema, so the API
  server prunes nothing and `--validate=strict` refuses an unknown field just as it would with KEDA.
- kafka.strimzi.io KafkaTopic: the fields of Strimzi's KafkaTopic spec the chart may set (topicName,
  partitions, replicas 1..32767, config), per Strimzi's documentation of the resource.
- kafka.strimzi.io KafkaUser: authentication (tls, tls-external, scram-sha-512) and simple authorization's
  ACL rules (resource type/name/patternType, operations, host, allow/deny), per Strimzi's KafkaUser reference.
- monitoring.coreos.com ServiceMonitor and PodMonitor (v1): selector, namespaceSelector and the scrape
  endpoints' fields, per the Prometheus Operator's API reference.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

DROP = {"title", "default", "examples", "discriminator"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _structural(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]), defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        types = {o.get("type") for o in options}
        if types == {"integer", "string"}:
            return {"x-kubernetes-int-or-string": True}
        merged = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            merged.update(options[0])
            return _structural(merged, defs)
        return {"x-kubernetes-preserve-unknown-fields": True}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP or key.startswith("$"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: _structural(v, defs) for name, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs)
        elif key == "additionalProperties" and value is True:
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out[key] = value
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        out["type"] = "object" if "properties" in out else "string"
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def scaled_object_crd() -> dict[str, Any]:
    from tools import chart_tools

    # The KEDA models live in a folder of their own, not in the venv (tools/chart_tools.py says why).
    models = str(chart_tools.ensure_keda_models())
    if models not in sys.path:
        sys.path.insert(0, models)
    from cloudcoil.models.keda.v1alpha1 import ScaledObject

    schema = ScaledObject.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    spec = _structural(schema["properties"]["spec"], defs)
    return _crd(
        group="keda.sh",
        version="v1alpha1",
        kind="ScaledObject",
        plural="scaledobjects",
        spec=spec,
    )


def kafka_topic_crd() -> dict[str, Any]:
    spec = {
        "type": "object",
        "properties": {
            "topicName": {"type": "string"},
            "partitions": {"type": "integer", "minimum": 1},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
            "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return _crd(group="kafka.strimzi.io", version="v1beta2", kind="KafkaTopic", plural="kafkatopics", spec=spec)


_ACL_OPERATIONS = [
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
]


def kafka_user_crd() -> dict[str, Any]:
    resource = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["topic", "group", "cluster", "transactionalId"]},
            "name": {"type": "string"},
            "patternType": {"type": "string", "enum": ["literal", "prefix"]},
        },
    }
    rule = {
        "type": "object",
        "required": ["resource"],
        "properties": {
            "resource": resource,
            "type": {"type": "string", "enum": ["allow", "deny"]},
            "host": {"type": "string"},
            "operations": {"type": "array", "items": {"type": "string", "enum": _ACL_OPERATIONS}},
        },
    }
    spec = {
        "type": "object",
        "properties": {
            "authentication": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "enum": ["tls", "tls-external", "scram-sha-512"]}},
            },
            "authorization": {
                "type": "object",
                "required": ["type", "acls"],
                "properties": {
                    "type": {"type": "string", "enum": ["simple"]},
                    "acls": {"type": "array", "items": rule},
                },
            },
            "quotas": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return _crd(group="kafka.strimzi.io", version="v1beta2", kind="KafkaUser", plural="kafkausers", spec=spec)


_LABEL_SELECTOR = {
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}
_ENDPOINT = {
    "type": "object",
    "properties": {
        "port": {"type": "string"},
        "targetPort": {"x-kubernetes-int-or-string": True},
        "path": {"type": "string"},
        "scheme": {"type": "string", "enum": ["http", "https"]},
        "interval": {
            "type": "string",
            "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
        },
        "scrapeTimeout": {"type": "string"},
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        "metricRelabelings": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}


def monitor_crds() -> list[dict[str, Any]]:
    namespaces = {
        "type": "object",
        "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
    }
    out = []
    for kind, endpoints in (("ServiceMonitor", "endpoints"), ("PodMonitor", "podMetricsEndpoints")):
        spec = {
            "type": "object",
            "required": ["selector"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": namespaces,
                endpoints: {"type": "array", "items": _ENDPOINT},
                "jobLabel": {"type": "string"},
            },
        }
        out.append(_crd(group="monitoring.coreos.com", version="v1", kind=kind, plural=kind.lower() + "s", spec=spec))
    return out


def all_crds() -> list[dict[str, Any]]:
    return [kafka_topic_crd(), kafka_user_crd(), scaled_object_crd(), *monitor_crds()]


def _crd(*, group: str, version: str, kind: str, plural: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }
