"""hypothesis strategies for random pies, holdings and events (shared by the property tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from rules.model import FULL, Pie, Security

SYMBOLS = [f"S{i}" for i in range(60)]


@st.composite
def targets(draw, n: int, zeros: bool) -> list[int]:
    """n basis-point targets summing to 100%; with `zeros`, some may be 0%."""
    if n == 1:
        return [FULL]
    cuts = sorted(draw(st.lists(st.integers(0, FULL), min_size=n - 1, max_size=n - 1)))
    out = [b - a for a, b in zip([0, *cuts], [*cuts, FULL])]
    if not zeros and 0 in out:
        # Move a point from the largest slice to each empty one: still sums to 100%.
        for i, t in enumerate(out):
            if t == 0:
                j = out.index(max(out))
                out[j] -= 1
                out[i] = 1
    return out


@st.composite
def pies(draw, max_depth: int = 4, max_slices: int = 50, zeros: bool = False, budget: int = 120) -> Pie:
    """A random pie: depth up to `max_depth`, up to `max_slices` slices per pie, at most
    `budget` securities in all (so examples stay fast), symbols shared across pies."""
    left = [budget]

    def build(name: str, target: int, depth: int) -> Pie:
        n = draw(st.integers(1, max(1, min(max_slices, left[0]))))
        ts = draw(targets(n, zeros))
        syms = draw(st.lists(st.sampled_from(SYMBOLS), min_size=n, max_size=n, unique=True))
        slices = []
        for k, (t, s) in enumerate(zip(ts, syms)):
            if depth < max_depth and left[0] > 2 and draw(st.integers(0, 5)) == 0:
                slices.append(build(f"P{depth}{k}", t, depth + 1))
            else:
                left[0] -= 1
                slices.append(Security(s, t))
        return Pie(name, target, tuple(slices))

    return build("Root", FULL, 1)


def leaf_paths(pie: Pie) -> list[str]:
    return [p for p, s in pie.walk() if isinstance(s, Security)]


def pie_paths(pie: Pie) -> list[str]:
    return [p for p, s in pie.walk() if isinstance(s, Pie)]


cents = st.integers(0, 10_000_000)          # up to $100,000 per slice


@st.composite
def holdings(draw, pie: Pie, empty_ok: bool = True) -> dict[str, int]:
    paths = leaf_paths(pie)
    values = draw(st.lists(cents, min_size=len(paths), max_size=len(paths)))
    if not empty_ok and not any(values):
        values[0] = 1
    return dict(zip(paths, values))
