"""The Prefect API refuses anyone without the credential kept in $P4INTEG_HOME."""
from __future__ import annotations

import os
import stat

import httpx
import pytest

from deployments import processes, templates

from flows import settings

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_the_credential_file_is_private_and_made_once() -> None:
    path = settings.api_auth_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    user, _, password = settings.api_auth_string().partition(":")
    assert user == "admin" and len(password) >= 32
    assert settings.api_auth_file() == path and settings.api_auth_string() == f"{user}:{password}"


def test_secrets_need_the_credential() -> None:
    templates.store_password("api.auth.user", "not-for-anonymous")
    url = f"{settings.api_url()}/block_documents/filter"
    body = {"include_secrets": True}

    anonymous = httpx.post(url, json=body, timeout=30)
    wrong = httpx.post(url, json=body, auth=("admin", "guessed"), timeout=30)
    user, _, password = settings.api_auth_string().partition(":")
    ours = httpx.post(url, json=body, auth=(user, password), timeout=30)

    assert anonymous.status_code == 401 and "not-for-anonymous" not in anonymous.text
    assert wrong.status_code == 401
    assert ours.status_code == 200 and "not-for-anonymous" in ours.text
    assert processes.refuses_anonymous()
    assert httpx.get(f"{settings.api_url()}/health", timeout=30).status_code == 200  # probes stay open


def test_every_process_we_start_gets_the_credential() -> None:
    env = settings.prefect_env()
    assert env["PREFECT_API_AUTH_STRING"] == settings.api_auth_string()
    assert os.environ["PREFECT_API_AUTH_STRING"] == settings.api_auth_string()


def test_secrets_are_encrypted_with_a_key_outside_the_database() -> None:
    import sqlite3

    templates.store_password("api.auth.key", "encrypted-at-rest")
    key = settings.home() / settings.ENCRYPTION_KEY_FILE  # the session's server began with a new database
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with sqlite3.connect(settings.home() / "prefect" / "prefect.db") as db:
        kept = db.execute("SELECT key FROM configuration WHERE key = 'ENCRYPTION_KEY'").fetchall()
        blob = b"".join(bytes(str(r[0]), "utf-8") for r in db.execute("SELECT data FROM block_document"))
    assert kept == []  # Prefect keeps no key of its own next to the data
    assert b"encrypted-at-rest" not in blob
