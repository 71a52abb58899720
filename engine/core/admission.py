"""Whether a deposit or a withdrawal is admitted when it is recorded. Pure: the ledger
supplies the sums (house cash, pending events, what an account holds), this decides.

Paper accounts receive no money from outside: a deposit comes out of the house account's
cash at the window, so the house's cash not yet promised to pending deposits bounds it. A
withdrawal may take what the account would hold after its pending events: its value, its
cash, pending deposits in, pending withdrawals out. A bulk import admits its rows in order
with these same functions, each row seeing the ones admitted before it (all or none is the
caller's transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.core.money import fmt


@dataclass(frozen=True, slots=True)
class HouseCash:
    """A broker account's house: its cash and the pending deposits promised out of it."""

    broker: str
    cash: int                 # cents
    promised: int             # cents of pending deposits

    @property
    def free(self) -> int:
        return self.cash - self.promised

    def after(self, deposit: int) -> HouseCash:
        return replace(self, promised=self.promised + deposit)


@dataclass(frozen=True, slots=True)
class AccountRoom:
    """What an account holds and what is pending for it, in cents."""

    account: str
    value: int                # its holdings at the prices used
    cash: int
    deposits: int             # pending, in
    withdrawals: int          # pending, out

    @property
    def room(self) -> int:
        return self.value + self.cash + self.deposits - self.withdrawals

    def after_deposit(self, cents: int) -> AccountRoom:
        return replace(self, deposits=self.deposits + cents)

    def after_withdrawal(self, cents: int) -> AccountRoom:
        return replace(self, withdrawals=self.withdrawals + cents)


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    reason: str | None = None     # one line, when refused

    def __bool__(self) -> bool:
        return self.admitted


ADMITTED = Verdict(True)


def admit_deposit(cents: int, account: str, house: HouseCash, *, in_batch: bool = False) -> Verdict:
    """A deposit of `cents` into `account`: admitted while the house's free cash covers it."""
    if cents <= house.free:
        return ADMITTED
    return Verdict(False, f"deposit of ${fmt(cents)} into {account!r}: the house account of broker {house.broker!r} "
                          f"has only ${fmt(max(house.free, 0))} unowned cash{' left' if in_batch else ''}")


def admit_withdrawal(cents: int, room: AccountRoom, *, in_batch: bool = False) -> Verdict:
    """A withdrawal of `cents`: admitted while the account's room after pending events covers it."""
    if cents <= room.room:
        return ADMITTED
    after = "the rows above and pending events" if in_batch else "pending events"
    return Verdict(False, f"withdrawal of ${fmt(cents)} from {room.account!r} is more than it holds "
                          f"(${fmt(max(room.room, 0))} after {after})")
