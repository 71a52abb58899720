"""Who may do what over the network: the roles, ranked, and the caller a token names.
Plain values (the tokens themselves live in the ledger: adapters/ledger/access.py)."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "operator", "analyst", "admin")


def rank(role: str) -> int:
    """viewer < operator < analyst < admin: each role may do what the ones before may."""
    return ROLES.index(role)


@dataclass(frozen=True)
class Caller:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return rank(self.role) >= rank(role)
