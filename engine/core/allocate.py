"""Allocation algorithms in exact integer arithmetic: cents for money, basis points for targets.

Each takes an amount, the current values of a pie's children and their targets, and returns
integer cents per child that sum to the amount exactly. Ideal (rational) amounts are
rounded down and the leftover cents go by **largest remainder**; ties go to the most
underweight child (for buys) or the most overweight (for sells and rebalances, so that a
rebalance is idempotent), then to the earlier slice in the file. See docs/allocation.md.
"""

from __future__ import annotations

from itertools import repeat
from operator import floordiv, mul
from typing import Sequence

_SCALE = 10 ** 8  # >= (max target bp)^2, so v*_SCALE//t orders v/t exactly


def _ratio(v: int, t: int) -> int:
    """An exact ordering key for v/t (value per basis point of target), t > 0."""
    return v * _SCALE // t


def apportion(total: int, nums: Sequence[int], den: int, rank: Sequence[int]) -> list[int]:
    """Split `total` cents where child i ideally gets nums[i]/den (sum(nums) == total*den).

    Floors first; the leftover cents go to the largest remainders, ties to lower rank.
    """
    out = list(map(floordiv, nums, repeat(den)))
    left = total - sum(out)
    if left:
        order = sorted(range(len(nums)), key=lambda i: (-(nums[i] % den), rank[i]))
        for i in order[:left]:
            out[i] += 1
    return out


def _place(n: int, idx: Sequence[int], amounts: Sequence[int]) -> list[int]:
    out = [0] * n
    for i, a in zip(idx, amounts):
        out[i] = a
    return out


def fill_underweight_first(amount: int, values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """M1's deposit: raise the most proportionately underweight children to a common level.

    Finds L with sum(max(0, L*t - v)) == amount; never takes anything away.
    """
    n = len(values)
    # (v/t key, index): sorts most underweight first, file order on ties. The map chain is
    # the same arithmetic as _ratio, done in C: this sort is the planner's hot spot.
    if 0 in targets:
        act = [i for _, i in sorted([(_ratio(v, t), i) for i, (v, t) in enumerate(zip(values, targets)) if t])]
    else:
        act = [i for _, i in sorted(zip(map(floordiv, map(mul, values, repeat(_SCALE)), targets), range(n)))]
    m = len(act)
    sv = st = k = 0
    while True:
        i = act[k]
        sv += values[i]
        st += targets[i]
        k += 1
        if k == m:
            break
        j = act[k]
        if (amount + sv) * targets[j] <= values[j] * st:   # level reached before child j
            break
    filled = act[:k]
    level = amount + sv                                     # the level L is level/st
    nums = [level * targets[i] - values[i] * st for i in filled]
    return _place(n, filled, apportion(amount, nums, st, range(k)))


def drain_overweight_first(amount: int, values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """M1's withdrawal: children held at 0% go first, then the most overweight down to a level.

    Finds L with sum(max(0, v - L*t)) == amount; never adds anything. amount <= sum(values).
    """
    n = len(values)
    zero = [i for i in range(n) if targets[i] == 0 and values[i] > 0]
    z = sum(values[i] for i in zero)
    if amount <= z:
        return _place(n, zero, apportion(amount, [amount * values[i] for i in zero], z or 1, range(len(zero))))
    out = _place(n, zero, [values[i] for i in zero])
    rest = amount - z
    act = sorted((i for i in range(n) if targets[i] > 0), key=lambda i: _ratio(values[i], targets[i]),
                 reverse=True)   # stable: equal ratios stay in file order
    m = len(act)
    sv = st = k = 0
    while True:
        i = act[k]
        sv += values[i]
        st += targets[i]
        k += 1
        if k == m:
            break
        j = act[k]
        if (sv - rest) * targets[j] >= values[j] * st:      # level reached above child j
            break
    drained = act[:k]
    level = sv - rest
    nums = [values[i] * st - level * targets[i] for i in drained]
    for i, a in zip(drained, apportion(rest, nums, st, range(k))):
        out[i] = a
    return out


def _rank(order: Sequence[int]) -> list[int]:
    rank = [0] * len(order)
    for r, i in enumerate(order):
        rank[i] = r
    return rank


def _underweight_rank(values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """Rank of each child, most underweight first (0% targets last), file order on ties."""
    return _rank(sorted(range(len(values)),
                        key=lambda i: (targets[i] == 0, _ratio(values[i], targets[i]) if targets[i] else 0)))


def _overweight_rank(values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """Rank of each child, most overweight first (held 0% targets first), file order on ties."""
    return _rank(sorted(range(len(values)),
                        key=lambda i: (targets[i] != 0, -_ratio(values[i], targets[i]) if targets[i] else 0)))


def fill_pro_rata(amount: int, values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """Split a deposit by target weight, whatever the children hold now."""
    total_t = sum(targets)
    return apportion(amount, [amount * t for t in targets], total_t, _overweight_rank(values, targets))


def drain_pro_rata(amount: int, values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """Take a withdrawal from every child in proportion to what it holds now."""
    total_v = sum(values)
    return apportion(amount, [amount * v for v in values], total_v or 1, _overweight_rank(values, targets))


def rebalance_to(total: int, values: Sequence[int], targets: Sequence[int]) -> list[int]:
    """Target values of the children for a pie worth `total` (not trades).

    Leftover cents go to the children holding the most per point of target: they move the
    fewest cents, and a second rebalance of the result trades nothing.
    """
    total_t = sum(targets)
    return apportion(total, [total * t for t in targets], total_t, _overweight_rank(values, targets))
