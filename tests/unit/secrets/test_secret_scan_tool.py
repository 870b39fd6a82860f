"""tools/secret_scan.py (gitleaks + .gitleaks.toml) finds every secret format this system holds, in the working
tree and anywhere in git history, never prints a value, and leaves digests, role-ids and PEM headers alone.

Every value is made at runtime (random, or a real key from `cryptography`), so this file holds nothing a
scanner would flag; the scratch repositories live in pytest's tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import string
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("qe_secret_scan", REPO / "tools" / "secret_scan.py")
assert _spec and _spec.loader
secret_scan = importlib.util.module_from_spec(_spec)
sys.modules["qe_secret_scan"] = secret_scan  # dataclasses look their module up while the file executes
_spec.loader.exec_module(secret_scan)

_RNG = secrets.SystemRandom()
_ALNUM = string.ascii_letters + string.digits
_GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def _random(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def _distinct(n: int) -> str:
    # n different characters: the entropy of a real token, never a low-entropy fluke of the dice.
    return "".join(_RNG.sample(_ALNUM, n))


def _pem(key: object, fmt: serialization.PrivateFormat, password: bytes | None) -> str:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()  # type: ignore[attr-defined]


def _password() -> bytes:
    return b"pw-" + os.urandom(4).hex().encode()


def _pkcs8() -> str:
    return _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8, None)


def _pkcs8_encrypted() -> str:
    return _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8, _password())


def _rsa_encrypted() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pem(key, serialization.PrivateFormat.TraditionalOpenSSL, _password())  # Proc-Type: 4,ENCRYPTED


def _openssh() -> str:
    return _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH, None)


_URLSAFE = _ALNUM + "_-"
# format -> (file name, content maker, the rule of .gitleaks.toml that must find it)
FORMATS: dict[str, tuple[str, Callable[[], str], str]] = {
    "binance key, bare": ("venue/keys.txt", lambda: _distinct(62) + _random(2) + "\n", "binance-api-key"),
    "binance secret in yaml": (
        "config/x.yaml",
        lambda: f"api_secret: {_distinct(60)}{_random(4)}\n",
        "binance-api-key",
    ),
    "vault hvs. token": ("ops/env.sh", lambda: f"export VAULT_TOKEN=hvs.{_random(92, _URLSAFE)}\n", "vault-token"),
    "vault hvb. token": ("ops/batch.txt", lambda: f"hvb.{_random(140, _URLSAFE)}\n", "vault-token"),
    "vault hvr. token": ("ops/recovery.py", lambda: f'RECOVERY = "hvr.{_random(40)}"\n', "vault-token"),
    "vault legacy s. token": ("ops/legacy.env", lambda: f"TOKEN=s.{_distinct(24)}\n", "vault-token-legacy-service"),
    "vault legacy b. token": ("ops/old.txt", lambda: f"b.{_random(110, _URLSAFE)}\n", "vault-token-legacy-batch"),
    "openai sk- key": ("llm/settings.py", lambda: f'OPENAI_API_KEY = "sk-{_random(48)}"\n', "openai-api-key"),
    "openai sk-proj- key": ("llm/.env", lambda: f"OPENAI_API_KEY=sk-proj-{_random(156, _URLSAFE)}\n", "openai-api-key"),
    "pem pkcs8": ("keys/ed25519.pem", _pkcs8, "pem-private-key"),
    "pem pkcs8 encrypted": ("keys/encrypted.pem", _pkcs8_encrypted, "pem-private-key"),
    "pem rsa traditional encrypted": ("keys/rsa.key", _rsa_encrypted, "pem-private-key"),
    "pem openssh": ("keys/id_ed25519", _openssh, "pem-private-key"),
    "approle secret-id in env": (
        "deploy/approle.env",
        lambda: f"QE_VAULT__APPROLE_SECRET_ID={uuid.uuid4()}\n",
        "vault-approle-secret-id",
    ),
    "approle secret-id in json": (
        "deploy/login.json",
        lambda: f'{{"role_id": "{uuid.uuid4()}", "secret_id": "{uuid.uuid4()}"}}\n',
        "vault-approle-secret-id",
    ),
}


@pytest.fixture(scope="module")
def gitleaks() -> Path:
    """The pinned gitleaks (built once with `go install`; `make secrets-scan` has usually built it already)."""
    try:
        return secret_scan.gitleaks_binary()
    except secret_scan.ScanError as exc:
        pytest.fail(f"gitleaks unavailable: {exc}", pytrace=False)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=_GIT_ENV, check=True, capture_output=True)


def _repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("scratch\n")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "start")
    return path


def _plant(root: Path) -> dict[str, str]:
    """Write one fresh value of every format; returns file -> content."""
    planted = {}
    for name, make, _rule in FORMATS.values():
        content = make()
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
        planted[name] = content
    return planted


def _rules_by_file(findings: list) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        out.setdefault(f.file, set()).add(f.rule)
    return out


def test_every_format_is_found_in_the_tree_and_in_history(tmp_path: Path, gitleaks: Path) -> None:
    root = _repo(tmp_path / "repo")
    # In history only: committed, then deleted (the keys are burnt all the same).
    _plant(root)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "add config")
    for name, *_ in FORMATS.values():
        (root / name).unlink()
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "remove config")
    assert secret_scan.scan_tree(root, gitleaks=gitleaks) == []
    history = _rules_by_file(secret_scan.scan_history(root, gitleaks=gitleaks))
    # In the tree only: new values, not committed (yet).
    _plant(root)
    tree = _rules_by_file(secret_scan.scan_tree(root, gitleaks=gitleaks))
    for label, (name, _make, rule) in FORMATS.items():
        assert rule in history.get(name, set()), f"{label}: not found in history"
        assert rule in tree.get(name, set()), f"{label}: not found in the tree"


def test_history_of_every_ref_is_scanned(tmp_path: Path, gitleaks: Path) -> None:
    root = _repo(tmp_path / "repo")
    _git(root, "checkout", "-q", "-b", "experiment")
    (root / "token.txt").write_text(f"hvs.{_random(95)}\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "try something")
    _git(root, "checkout", "-q", "main")
    assert not (root / "token.txt").exists()
    found = secret_scan.scan_history(root, gitleaks=gitleaks)
    assert [(f.file, f.rule) for f in found if f.rule == "vault-token"] == [("token.txt", "vault-token")]
    assert all(f.commit for f in found)


def test_main_fails_names_place_and_rule_and_never_prints_a_value(tmp_path: Path, capsys) -> None:
    root = _repo(tmp_path / "repo")
    planted = _plant(root)
    assert secret_scan.main(["--root", str(root)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "tree: venue/keys.txt:1: binance-api-key" in text and "tree: keys/encrypted.pem:1: pem-private-key" in text
    for content in planted.values():
        for line in content.splitlines():
            value = line.split("=", 1)[-1].split(": ", 1)[-1].strip('"{} ')
            if len(value) >= 16 and "PRIVATE KEY" not in value:
                assert value not in text


def test_clean_repository_passes_and_so_do_look_alikes(tmp_path: Path, capsys) -> None:
    root = _repo(tmp_path / "repo")
    header = "-----BEGIN " + "PRIVATE KEY-----"
    (root / "lookalikes.py").write_text(
        "\n".join(
            [
                f'MODEL_SHA256 = "{secrets.token_hex(32)}"',  # a digest: lowercase hex, low entropy per character
                f'ROLE_ID = "{uuid.uuid4()}"',  # role-ids are not secret
                f'secret_id_accessor = "{uuid.uuid4()}"',  # neither are accessors
                f"PEM_MARKER = {header!r}  # code that looks for a key, not a key",
                "import os.path as osp",
                "value = settings.approle_secret_id.get_secret_value()",
                "task-" + _random(10),
            ]
        )
        + "\n"
    )
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "look-alikes")
    assert secret_scan.main(["--root", str(root)]) == 0
    assert "no secrets found in the tree and git history" in capsys.readouterr().out


def test_inline_pragma_allowlists_one_reviewed_line_only(tmp_path: Path, gitleaks: Path) -> None:
    root = _repo(tmp_path / "repo")
    (root / "fixture.py").write_text(
        f'KNOWN_WRONG = "hvs.{_random(95)}"  # pragma: allowlist secret\nLEAKED = "hvs.{_random(95)}"\n'
    )
    found = secret_scan.scan_tree(root, gitleaks=gitleaks)
    assert {(f.file, f.line) for f in found} == {("fixture.py", 2)}


def test_ignored_files_are_not_tree_findings(tmp_path: Path, gitleaks: Path) -> None:
    root = _repo(tmp_path / "repo")
    (root / ".gitignore").write_text("local.env\n")
    (root / "local.env").write_text(f"VAULT_TOKEN=hvs.{_random(95)}\n")  # never committable
    (root / "new.env").write_text(f"VAULT_TOKEN=hvs.{_random(95)}\n")  # untracked, would be committed
    assert {f.file for f in secret_scan.scan_tree(root, gitleaks=gitleaks)} == {"new.env"}


def test_runs_as_a_script_on_a_tree_without_history(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("VALUE = 42\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "secret_scan.py"), "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "no secrets found" in done.stdout, done.stderr


def test_the_allowlist_is_reviewed() -> None:
    """Each allowlist of .gitleaks.toml says why; each fingerprint in .gitleaksignore has a comment above it."""
    import tomllib

    config = tomllib.loads((REPO / ".gitleaks.toml").read_text())
    assert config["extend"]["useDefault"] is True
    assert all(entry.get("description") for entry in config["allowlists"])
    # No allowlist by path for test or source folders: fixtures are allowed line by line, not wholesale.
    paths = [p for entry in config["allowlists"] for p in entry.get("paths", [])]
    assert not any("tests" in p or "services" in p for p in paths)
    ignore = REPO / ".gitleaksignore"
    if ignore.is_file():
        lines = ignore.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() and not line.startswith("#"):
                assert i > 0 and lines[i - 1].startswith("#"), f".gitleaksignore:{i + 1} has no reason above it"
