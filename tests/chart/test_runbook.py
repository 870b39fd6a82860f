"""Every grpcurl command in the runbook and in the chart's NOTES names a real method of the schema, sends a
request body that parses as that method's request message, and carries the operator token when the call
changes something."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from tests.chart.chartlib import COMPONENTS, DEV_SHAPE, REPO_ROOT

RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
CHANGING = {"Halt", "Resume", "UpdateLimits", "SubmitOrder", "CancelAll", "Flatten", "ReloadModels", "ReviewOrder"}
SECTIONS = (
    "Install",
    "Upgrade",
    "Roll back",
    "Check health",
    "Watch ticks",
    "Read status",
    "Halt and resume",
    "Flatten",
    "Reload models",
)


def grpcurl_commands(text: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if "grpcurl" not in line or line.startswith(("#", "|")) or "`" in line:
            continue
        start = line.index("grpcurl")
        words = shlex.split(line[start:].split("&&")[0].split(";")[0], comments=True)
        if words and words[0] == "grpcurl":
            commands.append(words)
    return commands


def code_blocks(markdown: str) -> str:
    """The contents of the fenced code blocks: the commands, without the prose around them."""
    return "\n".join(re.findall(r"^```[a-z]*\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL))


def method_of(words: list[str]) -> str | None:
    return next((w for w in reversed(words) if re.fullmatch(r"[a-z0-9.]+\.[A-Z]\w+/[A-Z]\w+", w)), None)


@pytest.fixture(scope="module")
def pool():
    from google.protobuf import descriptor_pool
    from grpc_health.v1 import health_pb2  # noqa: F401 - registers grpc.health.v1

    from quantumedge.v1 import (  # noqa: F401 - registers the services
        execution_pb2,
        inference_pb2,
        ingest_pb2,
        risk_pb2,
    )

    return descriptor_pool.Default()


def check_commands(commands: list[list[str]], pool) -> int:
    from google.protobuf import json_format, message_factory

    checked = 0
    for words in commands:
        method_path = method_of(words)
        if method_path is None:
            assert {"list", "describe"} & set(words), f"no method in: {' '.join(words)}"
            continue
        service_name, method_name = method_path.split("/")
        method = pool.FindServiceByName(service_name).methods_by_name.get(method_name)
        assert method is not None, f"{method_path} is not in the schema"
        if "-d" in words:
            body = words[words.index("-d") + 1]
            request = message_factory.GetMessageClass(method.input_type)()
            json_format.Parse(body, request)  # raises on an unknown field or a wrong type
        authed = (
            any("authorization: Bearer" in w for w in words)
            or '"${AUTH[@]}"' in " ".join(words)
            or ("${AUTH[@]}" in words)
        )
        if method_name in CHANGING and service_name.startswith("quantumedge."):
            assert authed, f"{method_path} changes state and needs the operator token: {' '.join(words)}"
        checked += 1
    return checked


def test_runbook_covers_every_operation() -> None:
    headings = [line[3:].strip() for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")]
    for section in SECTIONS:
        assert section in headings, section
    text = RUNBOOK.read_text()
    for command in ("helm install", "helm upgrade", "helm rollback", "helm history"):
        assert command in text


def test_runbook_grpcurl_commands_match_the_schema(pool) -> None:
    # The runbook writes "${AUTH[@]}" for the header array; shlex keeps it as one word.
    commands = grpcurl_commands(code_blocks(RUNBOOK.read_text()).replace('"${AUTH[@]}"', "${AUTH[@]}"))
    methods = {method_of(c) for c in commands} - {None}
    for required in (
        "quantumedge.v1.IngestService/Subscribe",
        "quantumedge.v1.RiskService/Halt",
        "quantumedge.v1.RiskService/Resume",
        "quantumedge.v1.ExecutionService/Flatten",
        "quantumedge.v1.InferenceService/ReloadModels",
        "grpc.health.v1.Health/Check",
    ):
        assert required in methods, required
    assert check_commands(commands, pool) >= 20


def test_notes_grpcurl_commands_match_the_schema(render, pool) -> None:
    commands = grpcurl_commands(render().notes)
    assert check_commands(commands, pool) >= 10


def _runbook_fullname(release: str) -> str:
    """What the runbook's own `export FULLNAME=...` line gives for a release name (run in bash, as a user would)."""
    line = next(x for x in RUNBOOK.read_text().splitlines() if x.startswith("export FULLNAME="))
    script = f'RELEASE={shlex.quote(release)}; {line}; printf %s "$FULLNAME"'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("release", ["qe", "quantumedge", "prod-quantumedge"])
def test_runbook_resource_names_are_the_charts_for_any_release(render, release: str) -> None:
    text = RUNBOOK.read_text()  # commands in list items are indented code blocks: the whole text
    fullname = _runbook_fullname(release)
    # The secured default, and the PLAINTEXT dev shape: the only one with the topic Job.
    shapes = {"default": render(release=release), "dev": render(set_values=DEV_SHAPE, release=release)}
    names = {shape: {(o["kind"], o["metadata"]["name"]) for o in r.objects} for shape, r in shapes.items()}
    referenced = set(re.findall(r"\$FULLNAME-([a-z]+|\{service\})", text))
    assert {"risk", "execution", "topics", "{service}"} <= referenced
    rule = next(x for x in text.splitlines() if x.startswith("export FULLNAME="))
    assert "$RELEASE-" not in text.replace(rule, ""), "resource names are $FULLNAME-<name>, not $RELEASE-<name>"
    for ref in referenced:
        if ref in COMPONENTS:
            for shape in names.values():
                assert ("Service", f"{fullname}-{ref}") in shape and ("Deployment", f"{fullname}-{ref}") in shape
        elif ref == "{service}":
            for component in COMPONENTS:
                assert all(("ServiceAccount", f"{fullname}-{component}") in shape for shape in names.values())
        elif ref == "topics":
            assert ("Job", f"{fullname}-topics") in names["dev"]
            assert ("Job", f"{fullname}-topics") not in names["default"]
            # ... so the runbook says which setting adds it.
            (paragraph,) = [p for p in text.split("\n\n") if "(`$FULLNAME-topics`" in p]
            assert "kafka.topics.provisioner=job" in paragraph and "PLAINTEXT" in paragraph
        else:
            # Secrets the runbook creates itself: the operator token's hash, and risk's signing key without Vault.
            assert ref in ("operator", "signing"), ref
