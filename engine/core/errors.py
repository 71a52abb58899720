"""Errors by what the caller must do, each mapped once to how every front end says it.

| class              | the caller must            | CLI exit | HTTP | console              |
|--------------------|----------------------------|----------|------|----------------------|
| Refused            | change what they gave      | 2        | 422  | the message          |
| NotFound           | name something that exists | 2        | 404  | the message          |
| Conflict           | look again, then retry     | 2        | 409  | the message          |
| BrokerUnavailable  | try again later            | 3        | 503  | "the broker ..."     |
| StopTrading        | have a person act          | 4        | 503  | "trading stopped ..."|

(Exit 1 stays the policy language's: a file that does not compile, a plan that would
trade.) The message is one line naming the value, account or file at fault and never
holds a secret; a refusal means nothing was written. `LedgerError` (adapters/ledger/store)
is `Refused` under its old name, so `except LedgerError` still catches every user error.
The broker port's `BrokerError` and `StopTrading` derive from the two broker classes here.
"""

from __future__ import annotations

from typing import ClassVar


class PiesError(Exception):
    """The root: an error whose class tells the caller what to do."""

    exit_code: ClassVar[int] = 2
    status: ClassVar[int] = 422
    title: ClassVar[str] = "refused"

    def console(self) -> str:
        """What the console shows (the CLI prints the message, the API sends it as detail)."""
        return str(self)


class Refused(PiesError, ValueError):
    """The input is refused (a bad amount, an account that is closing, too little cash)."""


class NotFound(Refused):
    """The account, event, window, version or token named does not exist."""

    status = 404
    title = "not found"


class Conflict(Refused):
    """Someone else holds or changed what this needs (a lock, a file changed since its plan)."""

    status = 409
    title = "conflict"


class BrokerUnavailable(PiesError):
    """The broker is not answering or refuses for now: nothing is known to have happened."""

    exit_code = 3
    status = 503
    title = "broker unavailable"

    def console(self) -> str:
        return f"The broker is not answering: {self}. Try again later."


class StopTrading(BrokerUnavailable):
    """A person must act: bad credentials, live trading not allowed, the account blocked."""

    exit_code = 4
    title = "trading stopped"

    def console(self) -> str:
        return f"Trading is stopped: {self}. A person must act (keys, the broker account)."

