"""Who may use the API and the console, and what they did: tokens (kept only as hashes)
and the audit log."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select

from engine.core.errors import NotFound
from engine.core.roles import ROLES, Caller, rank  # noqa: F401 (their old home)

from .schema import ApiToken, AuditEntry, aware, utcnow
from .store import Ledger, LedgerError

PREFIX = "pies_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Access:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def create(self, name: str, role: str) -> str:
        """A new token; the only time its text exists outside the caller's hands."""
        name = name.strip()
        if role not in ROLES:
            raise LedgerError(f"role {role!r} must be one of {', '.join(ROLES)}")
        if not name or len(name) > 100:
            raise LedgerError("a token needs a name of 1-100 characters")
        token = PREFIX + secrets.token_urlsafe(32)
        with self.ledger.tx() as s:
            if s.scalars(select(ApiToken).where(ApiToken.name == name)).first() is not None:
                raise LedgerError(f"a token named {name!r} exists already (revoke it first)")
            s.add(ApiToken(name=name, role=role, hash=digest(token), hint=token[:9]))
        return token

    def revoke(self, name: str) -> None:
        with self.ledger.tx() as s:
            t = s.scalars(select(ApiToken).where(ApiToken.name == name)).first()
            if t is None:
                raise NotFound(f"no token named {name!r}")
            if t.revoked_at is None:
                t.revoked_at = utcnow()
            t.name = f"{t.name}#revoked-{t.id}"    # the name can be given to a new token

    def list(self) -> list[dict[str, Any]]:
        with self.ledger.tx() as s:
            return [{"name": t.name, "role": t.role, "hint": t.hint + "...", "created_at": t.created_at.isoformat(),
                     "revoked": t.revoked_at is not None,
                     "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None}
                    for t in s.scalars(select(ApiToken).order_by(ApiToken.id))]

    def check(self, token: str) -> Caller | None:
        """The caller a token belongs to; None for an unknown or revoked token."""
        if not token.startswith(PREFIX):
            return None
        h = digest(token)
        with self.ledger.tx() as s:
            t = s.scalars(select(ApiToken).where(ApiToken.hash == h)).first()
            if t is None or t.revoked_at is not None or not hmac.compare_digest(t.hash, h):
                return None
            now = utcnow()
            if t.last_used_at is None or (now - aware(t.last_used_at)).total_seconds() > 60:
                t.last_used_at = now               # at most a write a minute per token
            return Caller(t.name, t.role)

    def audit(self, caller: Caller, action: str, arguments: dict[str, Any], outcome: str) -> None:
        with self.ledger.tx() as s:
            s.add(AuditEntry(token=caller.name, action=action, arguments=arguments, outcome=outcome[:200]))

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.ledger.tx() as s:
            return [{"at": e.at.isoformat(), "token": e.token, "action": e.action, "arguments": e.arguments,
                     "outcome": e.outcome}
                    for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))]
