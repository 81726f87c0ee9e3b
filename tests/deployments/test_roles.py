"""Who is an administrator: listed by the operator, or in the administrators' Perforce group,
asked of a real (sandbox) Perforce server with each user's own stored ticket."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from deployments import roles

from flows import settings
from flows.p4.sandbox import P4, init_depot, set_group, set_password

GROUP = "p4integ-admins"
pytestmark = pytest.mark.usefixtures("prefect_server")  # stored tickets are Secret blocks


def _ticket(port: str, user: str, password: str) -> str:
    """What signing in on the front page keeps: a ticket from ``login -a -p``."""
    from ui import auth

    return auth.check_credentials(user, password, port).ticket


@pytest.fixture
def depot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A server at Helix's default security level (tickets only), the group configured, nobody listed."""
    port = init_depot(tmp_path / "depot")
    for user in ("carol", "bob", "dave", "erin"):
        set_password(tmp_path / "depot", user, f"{user}-pw-1")
    set_group(tmp_path / "depot", "release-leads", users=["bob"])
    set_group(tmp_path / "depot", GROUP, users=["carol"], subgroups=["release-leads"])
    set_group(tmp_path / "depot", "qa", users=["dave"])
    monkeypatch.setenv(settings.ADMIN_GROUP_VAR, GROUP)
    monkeypatch.setenv(settings.P4PORT_VAR, port)
    monkeypatch.setenv(settings.ADMINS_VAR, "")
    settings.admins.cache_clear()
    roles.forget()
    yield port
    settings.admins.cache_clear()
    roles.forget()


def test_members_of_the_group_directly_or_through_a_subgroup_are_administrators(depot: str, tmp_path: Path,
                                                                               stored_password) -> None:
    for user in ("carol", "bob", "dave"):
        stored_password(user, _ticket(depot, user, f"{user}-pw-1"))
    assert roles.is_admin("carol")  # in the group
    assert roles.is_admin("bob")  # in release-leads, a subgroup of it
    assert not roles.is_admin("dave")  # in another group only
    assert not roles.is_admin(None) and not roles.is_admin("")

    # Asked at most once a minute: a change to the group shows after that, or when told to ask again.
    set_group(tmp_path / "depot", GROUP, users=[], subgroups=["release-leads"])
    assert roles.is_admin("carol")
    roles.forget()
    assert not roles.is_admin("carol") and roles.is_admin("bob")


def test_a_perforce_refusal_means_not_an_administrator_and_is_logged(depot: str, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture,
                                                                     stored_password) -> None:
    set_group(tmp_path / "depot", GROUP, users=["carol", "erin"], subgroups=["release-leads"])
    p4 = P4(port=depot, user="erin", client="erin-noclient")  # erin's stored ticket was logged out
    p4.password = "erin-pw-1"
    p4.connect()
    stored_password("erin", p4.run_login("-a", "-p", password="erin-pw-1")[-1].strip())
    p4.run_logout("-a")
    p4.disconnect()
    with caplog.at_level(logging.WARNING, logger="deployments.roles"):
        assert not roles.is_admin("erin")
    [warning] = [r.getMessage() for r in caplog.records if r.name == "deployments.roles"]
    assert "could not read the Perforce groups of 'erin'" in warning and "erin-pw-1" not in warning

    caplog.clear()
    roles.forget()
    with caplog.at_level(logging.WARNING, logger="deployments.roles"), pytest.MonkeyPatch.context() as mp:
        mp.setenv(settings.P4PORT_VAR, "nosuchscheme:1666")  # the server cannot be reached
        assert not roles.is_admin("erin")
    assert any("could not read the Perforce groups" in r.getMessage() for r in caplog.records)


def test_users_listed_by_the_operator_are_administrators_without_asking_perforce(
        depot: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ADMINS_VAR, "ops-1, dave")
    monkeypatch.setenv(settings.P4PORT_VAR, "nosuchscheme:1666")  # not asked: no port would answer
    settings.admins.cache_clear()
    assert roles.is_admin("ops-1") and roles.is_admin("dave")
    assert not roles.is_admin("nobody")


def test_without_a_group_only_the_listed_users_are_administrators(depot: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.ADMIN_GROUP_VAR)
    assert not roles.is_admin("carol")
