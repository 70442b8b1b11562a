"""docs/collectors.md said a collector token without a unit may send anything, while
`ioc token create` refuses such a token (issue 19): the docs now say what ioc does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ioc.auth import create_token
from ioc.db import Database
from ioc.errors import Invalid

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFUSAL = "a collector token needs a unit (--unit CODE); only admin may have none"


async def test_a_collector_token_without_a_unit_is_refused(db: Database) -> None:
    with pytest.raises(Invalid) as refused:
        async with db.session() as session:
            await create_token(session, name="cong-dvc", role="collector", unit_code=None)
    assert refused.value.detail == REFUSAL


def test_the_cli_refuses_it_with_the_words_of_the_docs(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ioc", "token", "create", "--role", "collector", "--name", "x"],
        env={**os.environ, "IOC_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert REFUSAL in done.stderr


def test_the_collectors_doc_says_what_ioc_does() -> None:
    text = " ".join((DOCS / "collectors.md").read_text().split())
    assert "collector token without a unit may send anything" not in text
    assert "every collector token is bound to a unit" in text
    assert REFUSAL in text
