"""Stored passwords and notification settings: one Prefect name per Perforce user, never shared."""
from __future__ import annotations

import pytest

from deployments import templates
from deployments.templates import TemplateError
from flows.notify import settings_variable
from flows.usernames import decode_user, encode_user, foreign_secret, ticket_secret_name

from tests.cli import p4integ

NAMES = ["john.smith", "john-smith", "John_Smith", "rel.bot", "rel_bot", "relbot", "RelBot", "!!!", "Zoë"]


def test_every_user_name_gets_its_own_block_and_variable_name() -> None:
    secrets = [templates.secret_name(n) for n in NAMES]
    variables = [settings_variable(n) for n in NAMES]
    assert len(set(secrets)) == len(NAMES) and len(set(variables)) == len(NAMES)
    assert all(s.startswith("p4-password-") and set(s) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
               for s in secrets)
    assert all(v.startswith("p4_notify_") and set(v) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_")
               for v in variables)
    assert [decode_user(encode_user(n)) for n in NAMES] == NAMES
    assert templates.secret_name("ivan") == "p4-password-ivan"  # plain names read as themselves
    tickets = [ticket_secret_name(n) for n in NAMES]  # the sign-in's ticket: a block of its own
    assert len(set(tickets)) == len(NAMES) and not set(tickets) & set(secrets)
    assert ticket_secret_name("ivan") == "p4-ticket-ivan"


def test_a_spec_may_name_only_its_own_users_password() -> None:
    assert foreign_secret("rel.bot", templates.secret_name("rel.bot")) is None
    assert foreign_secret("rel.bot", None) is None
    problem = foreign_secret("rel.bot", templates.secret_name("rel_bot"))  # a look-alike is someone else
    assert problem and problem.startswith("password_secret: ") and "'p4-password-rel-2e-bot'" in problem
    assert foreign_secret("rel.bot", "p4-password-boss")
    assert foreign_secret("rel.bot", ticket_secret_name("rel.bot")) is None  # the user's own sign-in ticket
    assert foreign_secret("rel.bot", ticket_secret_name("rel_bot"))
    assert foreign_secret("rel.bot", "p4-ticket-boss")


@pytest.mark.usefixtures("local_worker")
def test_look_alike_users_keep_their_own_passwords() -> None:
    from prefect.blocks.system import Secret

    a = p4integ("credentials", "set", "rel.bot", stdin="dot-password\n")
    b = p4integ("credentials", "set", "rel_bot", stdin="underscore-password\n")
    c = p4integ("credentials", "set", "!!!", stdin="bang-password\n")
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr + b.stderr + c.stderr
    assert Secret.load(templates.secret_name("rel.bot")).get() == "dot-password"
    assert Secret.load(templates.secret_name("rel_bot")).get() == "underscore-password"
    assert Secret.load(templates.secret_name("!!!")).get() == "bang-password"
    assert '"password_secret": "p4-password--21--21--21-"' in c.stdout


@pytest.mark.usefixtures("local_worker")
def test_a_stored_password_is_removed_and_only_that_users() -> None:
    assert p4integ("credentials", "set", "gone.bot", stdin="gone-password\n").returncode == 0
    assert p4integ("credentials", "set", "gone_bot", stdin="stays-password\n").returncode == 0
    removed = p4integ("credentials", "remove", "gone.bot")
    assert removed.returncode == 0, removed.stderr
    assert templates.stored_secret("gone.bot") is None
    assert templates.stored_secret("gone_bot") == templates.secret_name("gone_bot")  # the look-alike's stays
    again = p4integ("credentials", "remove", "gone.bot")
    assert again.returncode != 0 and "no stored password for 'gone.bot'" in again.stderr
    assert templates.forget_password("gone_bot")


@pytest.mark.usefixtures("local_worker")
@pytest.mark.parametrize("typed", ["\n", "   \n", "\t \n"])
def test_a_blank_password_is_refused_and_nothing_stored(typed: str) -> None:
    from prefect.blocks.system import Secret

    out = p4integ("credentials", "set", "blank-pw-user", stdin=typed)
    assert out.returncode == 2
    assert "error: password: empty or only spaces; give the Perforce password or a long-lived ticket" in out.stderr
    with pytest.raises(ValueError):
        Secret.load(templates.secret_name("blank-pw-user"))
    with pytest.raises(TemplateError, match="^password: empty or only spaces"):
        templates.store_password("blank-pw-user", "  ")


@pytest.mark.usefixtures("local_worker")
def test_look_alike_users_keep_their_own_notification_settings() -> None:
    from prefect.variables import Variable

    from deployments.notifications import set_notifications

    set_notifications("rel.bot", email="dot@example.com")
    set_notifications("rel_bot", email="underscore@example.com")
    try:
        assert Variable.get(settings_variable("rel.bot"))["email"] == "dot@example.com"
        assert Variable.get(settings_variable("rel_bot"))["email"] == "underscore@example.com"
    finally:
        set_notifications("rel.bot")
        set_notifications("rel_bot")


def test_the_cli_says_it_acts_as_anyone() -> None:
    for group in ("templates", "schedules"):
        out = p4integ(group, "--help")
        assert "administrator's tool on the service host" in " ".join(out.stdout.split()), out.stdout
    out = p4integ("templates", "create", "--help")
    assert "not checked" in " ".join(out.stdout.split())
