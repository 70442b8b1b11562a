"""Token commands of the `ioc` CLI: `token create|list|revoke`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from ioc.console import in_session, run_on_database

token_app = typer.Typer(
    help="API tokens: create, list, revoke (docs/api.md §3).", no_args_is_help=True
)


def register_cli(app: typer.Typer) -> None:
    """Add `token` to the `ioc` command line."""
    app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[
        str, typer.Option(help="admin, operator, department_head, district or collector.")
    ],
    name: Annotated[str, typer.Option(help="Who or what uses the token, e.g. 'screen-689'.")],
    unit: Annotated[
        str | None,
        typer.Option(
            help="GSO code of the unit whose subtree the token sees (required except for admin)."
        ),
    ] = None,
    expires_days: Annotated[int | None, typer.Option(help="Expire after N days.")] = None,
) -> None:
    """Create a token. The token is printed once, alone on the last line; only a hash is kept."""
    from ioc.auth.service import create_token

    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    secret, info = run_on_database(
        lambda url: in_session(
            url, lambda s: create_token(s, name=name, role=role, unit_code=unit, expires_at=expires)
        )
    )
    typer.echo(
        f"created token {info.id} ({info.role}, unit {info.unit_code or 'all'}); "
        "store it now, it is not shown again:",
        err=True,
    )
    typer.echo(secret)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    from ioc.auth.service import list_tokens

    tokens = run_on_database(lambda url: in_session(url, list_tokens))
    for t in tokens:
        state = (
            "revoked"
            if t.revoked_at
            else ("expired" if t.expires_at and t.expires_at < datetime.now(UTC) else "active")
        )
        typer.echo(
            f"{t.id}  {t.prefix}…  {t.role:<16} {t.unit_code or 'all':<6} {state:<8} {t.name}"
        )


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="Token id or its printed prefix.")],
) -> None:
    """Revoke a token; it stops working at once, on open websockets too."""
    from ioc.auth.service import revoke_token

    info = run_on_database(lambda url: in_session(url, lambda s: revoke_token(s, token)))
    typer.echo(f"revoked {info.id} ({info.name})")
