"""Shared fixtures for Tandem's integration tests.

    def test_something(deploy):
        d = deploy("examples/two-site.yaml")        # deploy up, addresses moved to 127.$TANDEM_TEST_NET.*
        d.ctl("deploy", "status", json=True)         # tandemctl --state-dir <dir> deploy status --json
        d.kill_site("Site1"); d.revive_site("Site1")
        d.wait_until(lambda: ..., timeout=30, what="alice signed in")

`deploy` is per test; `deploy_module` shares its deployments across one test file. Both ALWAYS
tear down (deploy down --purge, SIGKILL of leftovers, state dir removed). See lib/deployment.py.
Run with Debian's python: `TANDEM_TEST_NET=<n> /usr/bin/python3 -m pytest tests/integration`.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.deployment import DeploymentFactory, binaries, build_dir, test_net  # noqa: E402


def pytest_report_header(config):
    return [f"tandem: build dir {build_dir()}, TANDEM_TEST_NET={test_net()}"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets the fixtures know the test failed, so teardown prints the tails of every log.
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for name in ("deploy", "deploy_module"):
            factory = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(factory, DeploymentFactory):
                factory.failed = True


def _require_binaries():
    message = None
    try:
        binaries()
    except AssertionError as e:
        message = str(e)
    if message:
        pytest.fail(message, pytrace=False)


@pytest.fixture
def tandem_binaries():
    """(tandemctl, tandemd) paths; fails the test clearly when they are not built."""
    _require_binaries()
    return binaries()


@pytest.fixture
def deploy(request, tandem_binaries):
    """Factory: deploy(topology_path_or_dict, env=None, up=True) -> Deployment (one test)."""
    factory = DeploymentFactory(request.node.name)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def deploy_module(request):
    """Factory like `deploy`, shared by every test of one file (torn down after the last)."""
    _require_binaries()
    factory = DeploymentFactory(Path(str(request.node.name)).stem)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def lab():
    """The front-end lab of the test_frontend*.py files (lib/frontend_lab.make_lab): started
    once per test module, closed after its last test."""
    from lib.frontend_lab import make_lab
    lab = make_lab("fe")
    try:
        yield lab
    finally:
        lab.close()
