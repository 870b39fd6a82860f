"""tools/secret_scan.py finds committed keys, reports no values, and its baseline can't whitelist a real key."""

from __future__ import annotations

import importlib.util
import json
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("qe_secret_scan", REPO / "tools" / "secret_scan.py")
assert _spec and _spec.loader
secret_scan = importlib.util.module_from_spec(_spec)
sys.modules["qe_secret_scan"] = secret_scan  # dataclasses look their module up while the file executes
_spec.loader.exec_module(secret_scan)


def _aws_like_key() -> str:
    # Built at runtime so this test file itself holds nothing a scanner would flag.
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def _leaky_tree(tmp_path: Path) -> tuple[Path, str]:
    key = _aws_like_key()
    (tmp_path / "clean.py").write_text("VALUE = 42\n")
    (tmp_path / "settings.yaml").write_text(f"exchange:\n  aws_access_key_id: {key}\n")
    return tmp_path, key


def test_finds_a_committed_key_and_never_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, key = _leaky_tree(tmp_path)
    findings = secret_scan.scan(root, ["clean.py", "settings.yaml"], None)
    assert findings and {f.filename for f in findings} == {"settings.yaml"}
    assert secret_scan.main(["--root", str(root)]) == 1
    out = capsys.readouterr()
    assert "settings.yaml:2" in out.err and key not in out.err + out.out


def test_clean_tree_passes(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("VALUE = 42\n")
    assert secret_scan.main(["--root", str(tmp_path)]) == 0


def test_inline_allowlist_pragma_is_honoured(tmp_path: Path) -> None:
    (tmp_path / "fixture.py").write_text(f'KEY = "{_aws_like_key()}"  # pragma: allowlist secret\n')
    assert secret_scan.scan(tmp_path, ["fixture.py"], None) == []


def test_baseline_accepts_only_audited_false_positives(tmp_path: Path) -> None:
    root, _ = _leaky_tree(tmp_path)
    secret_scan.write_baseline(root, root / secret_scan.BASELINE)
    baseline_path = root / secret_scan.BASELINE
    assert json.loads(baseline_path.read_text())["results"] == {}
    # Someone pastes the current findings into the baseline without auditing them: still a failure.
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        found = SecretsCollection(root=str(root))
        found.scan_file("settings.yaml")
    data = json.loads(baseline_path.read_text())
    data["results"] = found.json()
    baseline_path.write_text(json.dumps(data))
    unaudited = secret_scan.scan(root, ["settings.yaml"], baseline_path)
    assert unaudited and all("not audited" in f.why or f.why == "not in the baseline" for f in unaudited)
    # Audited as a false positive ("is_secret": false): accepted.
    for items in data["results"].values():
        for item in items:
            item["is_secret"] = False
    baseline_path.write_text(json.dumps(data))
    assert secret_scan.scan(root, ["settings.yaml"], baseline_path) == []


def test_candidate_files_are_tracked_plus_untracked_not_ignored(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored.txt\n")
    (tmp_path / "ignored.txt").write_text("x\n")
    (tmp_path / "new.py").write_text("x = 1\n")
    (tmp_path / "model.onnx").write_bytes(b"\0\1")
    assert secret_scan.candidate_files(tmp_path) == [".gitignore", "new.py"]


def test_the_repository_baseline_whitelists_nothing() -> None:
    data = json.loads((REPO / ".secrets.baseline").read_text())
    unaudited = [i for items in data.get("results", {}).values() for i in items if i.get("is_secret") is not False]
    assert unaudited == []


def test_runs_as_a_script(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("VALUE = 42\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "secret_scan.py"), "--root", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "no secrets found" in done.stdout


def test_digest_lines_pass_but_a_key_in_the_same_file_does_not(tmp_path: Path) -> None:
    secret_scan.write_baseline(tmp_path, tmp_path / secret_scan.BASELINE)
    digest = secrets.token_hex(32)
    key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(64))
    (tmp_path / "manifest.json").write_text(
        f'{{\n  "{digest}": {{\n    "sha256": "{digest}",\n    "feature_schema_hash": "{digest}"\n  }},\n'
        f'  "api_secret": "{key}"\n}}\n'
    )
    findings = secret_scan.scan(tmp_path, ["manifest.json"], tmp_path / secret_scan.BASELINE)
    assert {f.line for f in findings} == {6}  # the key (flagged by two detectors), none of the digests
