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


TEXT_MAX = 200          # characters of one argument the audit keeps
ITEMS_MAX = 20          # arguments (or list items) it keeps


def summary(value: Any, depth: int = 0) -> Any:
    """What the audit keeps of a request's arguments: each text cut to TEXT_MAX characters
    (with its full length noted), at most ITEMS_MAX items per level, three levels deep. A
    row stays small whatever a caller sends."""
    if isinstance(value, str):
        return value if len(value) <= TEXT_MAX else f"{value[:TEXT_MAX]}... ({len(value)} characters)"
    if depth >= 3 and isinstance(value, (dict, list, tuple)):
        return f"({type(value).__name__} of {len(value)})"
    if isinstance(value, dict):
        out = {str(k)[:TEXT_MAX]: summary(v, depth + 1) for k, v in list(value.items())[:ITEMS_MAX]}
        if len(value) > ITEMS_MAX:
            out["..."] = f"{len(value) - ITEMS_MAX} more"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [summary(v, depth + 1) for v in list(value)[:ITEMS_MAX]]
        return out_list + ([f"... {len(value) - ITEMS_MAX} more"] if len(value) > ITEMS_MAX else [])
    return value


class Access:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def create(self, name: str, role: str) -> str:
        """A new token; the only time its text exists outside the caller's hands."""
        name = name.strip()
        if role not in ROLES:
            raise LedgerError(f"role {role!r} must be one of {', '.join(ROLES)}")
        from engine.core.names import problem
        wrong = problem(name, "a token's name")
        if wrong:
            raise LedgerError(wrong)
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

    def set_role(self, name: str, role: str) -> None:
        """Change a token's role; its console sessions end at their next request."""
        if role not in ROLES:
            raise LedgerError(f"role {role!r} must be one of {', '.join(ROLES)}")
        with self.ledger.tx() as s:
            t = s.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).first()
            if t is None:
                raise NotFound(f"no token named {name!r}")
            t.role = role

    @staticmethod
    def fingerprint(token: str) -> str:
        """What a console session keeps of its token: the hash the ledger keeps too."""
        return digest(token)

    def check(self, token: str) -> Caller | None:
        """The caller a token belongs to; None for an unknown or revoked token."""
        if not token.startswith(PREFIX):
            return None
        return self.current(digest(token))

    def current(self, h: str) -> Caller | None:
        """The caller of the token whose hash is `h`, as it is now (a console session keeps
        the hash, never the token, and asks on every request)."""
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
            s.add(AuditEntry(token=caller.name, action=action[:100], arguments=summary(arguments),
                             outcome=outcome[:200]))

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.ledger.tx() as s:
            return [{"at": e.at.isoformat(), "token": e.token, "action": e.action, "arguments": e.arguments,
                     "outcome": e.outcome}
                    for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))]
