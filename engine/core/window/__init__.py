"""The trading window's decisions across accounts, the house and the broker: pure.

Frozen types in, decisions out; no SQL, no broker, no clock, no logging. The shell
(`engine/shell/window.py`) loads each step's inputs through the ledger's window
repository, calls one function here, persists what it returns and talks to the broker.
Every loop that decides who gets a cent or a share runs in a sorted order.

Modules, in the order a window uses them:
- model: the types and enums (event kinds, outcomes, causes).
- collect: dividends split by shares, recurring deposits due.
- planning: one account's plan, with bad events set aside one by one.
- netting: the accounts' slice trades of each symbol into broker orders.
- allocation: fill reports (and internal crosses) split back to slices and the house.
- scaling: buys cut to the cash the sells actually brought.
- settlement: cash moved, withdrawals paid (in part, with the reason), events' outcomes.
- conservation: the ledger checked against the broker's positions and cash.
- report: the typed window report.
"""
