"""`tandemctl topology validate` and `topology show` from the command line.

Each broken file under tests/data/topologies/ marks the problems it must produce: a line ending
in `# <- RULE` must be reported (rule RULE) at that line, and `# expect-file: RULE` marks a
problem about the whole file. The CLI must report exactly those, as `FILE:LINE: sentence`.
"""
import json
import os
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("TANDEM_BUILD_DIR", REPO / "build"))
TANDEMCTL = BUILD / "bin" / "tandemctl"
BROKEN = sorted((REPO / "tests" / "data" / "topologies").glob("*.yaml"))
EXAMPLES = [REPO / "examples" / "quickstart.yaml", REPO / "examples" / "two-site.yaml"]


def tandemctl(*args):
    return subprocess.run([str(TANDEMCTL), *args], capture_output=True, text=True, timeout=30,
                          errors="replace",
                          cwd=REPO)


def expected_problems(path):
    """The (rule, line) pairs a broken file marks."""
    expected = []
    for number, text in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        marker = re.search(r"# <- ([a-z0-9-]+)\s*$", text)
        if marker:
            expected.append((marker.group(1), number))
        whole = re.match(r"# expect-file: ([a-z0-9-]+)\s*$", text)
        if whole:
            expected.append((whole.group(1), 0))
    return sorted(expected)


def test_broken_files_are_there():
    assert len(BROKEN) >= 25
    for path in BROKEN:
        assert expected_problems(path), f"{path.name} marks no expected problem"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate(example):
    rel = str(example.relative_to(REPO))
    result = tandemctl("topology", "validate", rel)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.fullmatch(re.escape(rel) + r": valid \(\d+ sites?, \d+ stores?, \d+ pools?, "
                        r"\d+ servers?\)\n", result.stdout), result.stdout


def test_two_site_summary_counts_everything():
    result = tandemctl("topology", "validate", "examples/two-site.yaml")
    assert result.stdout == ("examples/two-site.yaml: valid "
                             "(2 sites, 9 stores, 5 pools, 8 servers)\n")


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_file_reports_exactly_its_problems(path):
    rel = str(path.relative_to(REPO))
    result = tandemctl("topology", "validate", rel)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # Text form: one `FILE:LINE: sentence` (or `FILE: sentence`) per problem.
    for want_rule, want_line in expected_problems(path):
        prefix = f"{rel}:{want_line}: " if want_line else f"{rel}: "
        assert any(l.startswith(prefix) for l in lines), \
            f"no problem reported at {prefix!r} ({want_rule}):\n{result.stdout}"
    assert len(lines) == len(expected_problems(path)), result.stdout
    assert "problem" in result.stderr
    # JSON form: the exact rules and lines.
    doc = json.loads(tandemctl("topology", "validate", "--json", rel).stdout)
    assert doc["valid"] is False
    got = sorted((p["rule"], p["line"]) for p in doc["problems"])
    assert got == expected_problems(path)
    for p in doc["problems"]:
        assert p["message"] and "\n" not in p["message"]


def test_show_json_parses_and_names_every_pool():
    result = tandemctl("topology", "show", "--json", "examples/two-site.yaml")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["domain"] == "example.test"
    assert [p["fqdn"] for p in doc["pools"]] == [
        "pool1.example.test", "pool2.example.test", "chat.example.test",
        "edge1.example.test", "edge2.example.test"]
    chat = doc["pools"][2]
    assert chat["role"] == "chat" and chat["active_servers"] == ["chat1a.example.test"]
    pc1 = next(s for s in doc["stores"] if s["name"] == "pc1")
    assert pc1["log_shipping"] == {"to": "pcb", "share": "share/pc1", "interval_s": 5}
    assert all("password" not in u for u in doc["users"])


def test_show_prints_tables():
    result = tandemctl("topology", "show", "examples/quickstart.yaml")
    assert result.returncode == 0, result.stderr
    for heading in ("SITES", "STORES", "POOLS", "SERVERS"):
        assert heading in result.stdout
    row = next(l for l in result.stdout.splitlines() if l.startswith("chat1a.example.test"))
    assert row.split() == ["chat1a.example.test", "chat.example.test", "chat", "Site1",
                           "127.0.1.30", "yes"]


def test_show_refuses_a_broken_file_and_lists_its_problems():
    result = tandemctl("topology", "show", "tests/data/topologies/cms-none.yaml")
    assert result.returncode != 0
    assert "tests/data/topologies/cms-none.yaml:" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("verb", ["validate", "show"])
def test_missing_file_is_a_clear_error(verb):
    result = tandemctl("topology", verb, "no/such/topology.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith("error: topology file `no/such/topology.yaml` does not exist")
    assert result.stdout == ""


def test_missing_argument_is_a_usage_error():
    result = tandemctl("topology", "validate")
    assert result.returncode == 2
