"""Comparing methods with the uncertainty the seeds give: the ONE rule every verdict uses (the notebooks'
`verdict_*` functions, the dashboard's Compare view, REPRODUCTION.md's wording).

    result = compare_methods({"BNTT": [88.20, 88.72, 88.35], "BN": [88.04, 88.98, 88.21], "none": [86.2]})
    result.order                    # ['BNTT', 'BN', 'none']: by mean, best first
    result.stats["BNTT"]            # MethodStats(method='BNTT', mean=88.42, std=0.27, n=3, values=(...))
    result.pair("BNTT", "BN")       # Pair(..., verdict='tie', difference=0.01, spread=0.50)
    result.pair("BNTT", "none")     # Pair(..., verdict='one seed', difference=2.22, ...)
    print(result.summary())         # BNTT 88.42 ± 0.27 (3 seeds) ≈ BN 88.41 ± 0.50 (3 seeds) ? none 86.20 (one seed)

The rule, for two methods a and b with n_a, n_b values (one per seed), means m and sample stds s (ddof 1):
  * "one seed"  when n_a = 1 or n_b = 1: a single run has no spread to judge a difference by; the raw
                difference is still given, but it is not a verdict;
  * "tie"       when |m_a − m_b| ≤ max(s_a, s_b): the gap is within the seed-to-seed spread;
  * "ahead"     otherwise: the method with the better mean (higher, or lower with higher_is_better=False)
                is ahead; `Pair.leader` names it.
A deliberately loose rule: with three seeds, "ahead" means the gap exceeds one standard deviation of the
noisier method, not a significance test. Values that are NaN are left out (a seed without that number).

Run the tests: .venv/bin/python -m pytest tests/test_verdicts.py -q
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

AHEAD, TIE, ONE_SEED = "ahead", "tie", "one seed"
_SEPARATOR = {AHEAD: ">", TIE: "≈", ONE_SEED: "?"}


@dataclass(frozen=True)
class MethodStats:
    """One method's values over the seeds present: mean, sample std (NaN for one seed) and n."""

    method: str
    mean: float
    std: float
    n: int
    values: tuple[float, ...]

    def text(self, digits: int = 2, unit: str = "") -> str:
        """'88.42 ± 0.27% (3 seeds)' or '86.20% (one seed)'."""
        if self.n == 1:
            return f"{self.mean:.{digits}f}{unit} (one seed)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}{unit} ({self.n} seeds)"


@dataclass(frozen=True)
class Pair:
    """The verdict between methods a and b (a ranked no worse than b by mean).

    difference = mean_a − mean_b (≥ 0 when higher is better, ≤ 0 when lower is); spread = max(std_a,
    std_b) (NaN when a method has one seed); verdict "ahead" (then `leader` is a), "tie" or "one seed"."""

    a: str
    b: str
    difference: float
    spread: float
    verdict: str

    @property
    def leader(self) -> str | None:
        return self.a if self.verdict == AHEAD else None

    def text(self, digits: int = 2, unit: str = "") -> str:
        """A short sentence: 'BNTT ahead of BN by 1.68', 'BNTT and BN tie (Δ 0.01 ≤ spread 0.50)',
        'one seed: BNTT − none = +2.22 (not a verdict)'."""
        delta = f"{abs(self.difference):.{digits}f}{unit}"
        if self.verdict == AHEAD:
            return f"{self.a} ahead of {self.b} by {delta} (> spread {self.spread:.{digits}f}{unit})"
        if self.verdict == TIE:
            return f"{self.a} and {self.b} tie (Δ {delta} ≤ spread {self.spread:.{digits}f}{unit})"
        return f"one seed: {self.a} − {self.b} = {self.difference:+.{digits}f}{unit} (not a verdict)"


@dataclass(frozen=True)
class MethodComparison:
    """compare_methods' result: per-method stats ordered best first and a Pair for every two methods."""

    stats: dict[str, MethodStats]  # in `order`
    order: list[str]  # best mean first
    pairs: dict[tuple[str, str], Pair]  # (a, b) with a before b in `order`
    higher_is_better: bool

    def pair(self, a: str, b: str) -> Pair:
        """The Pair of a and b, whichever order they are asked in (a Pair always lists the better first)."""
        if (a, b) in self.pairs:
            return self.pairs[(a, b)]
        if (b, a) in self.pairs:
            return self.pairs[(b, a)]
        raise KeyError(f"no comparison of {a!r} and {b!r}; methods: {self.order}")

    def outcome(self, a: str, b: str) -> str:
        """Is a better than b? "yes" (a ahead), "no" (b ahead), "tie" or "one seed"."""
        found = self.pair(a, b)
        if found.verdict != AHEAD:
            return found.verdict
        return "yes" if found.leader == a else "no"

    def holds(self, order: Sequence[str]) -> str:
        """Does the claimed order (best first, e.g. ["bntt", "bn", "none"]) hold? Over consecutive pairs
        of the methods present: "no" when any is reversed beyond the spread, else "one seed" when any
        pair rests on one seed, else "tie" when any pair ties, else "yes"."""
        present = [m for m in order if m in self.stats]
        outcomes = [self.outcome(a, b) for a, b in zip(present, present[1:], strict=False)]
        for word in ("no", ONE_SEED, TIE):
            if word in outcomes:
                return word
        return "yes"

    def summary(self, digits: int = 2, unit: str = "") -> str:
        """The methods best first with their mean ± std (n), joined by '>' (ahead), '≈' (tie) or '?'
        (one seed) between neighbours."""
        parts = [f"{self.order[0]} {self.stats[self.order[0]].text(digits, unit)}"]
        for a, b in zip(self.order, self.order[1:], strict=False):
            parts.append(f"{_SEPARATOR[self.pairs[(a, b)].verdict]} {b} {self.stats[b].text(digits, unit)}")
        return " ".join(parts)

    def frame(self) -> pd.DataFrame:
        """One row per method, best first: method, mean, std, n, rank (by mean, 1 = best) and
        verdict_vs_next ("ahead", "tie" or "one seed": whether the gap to the next method is a verdict)."""
        rows = []
        for rank, method in enumerate(self.order, start=1):
            stats = self.stats[method]
            nxt = self.order[rank] if rank < len(self.order) else None
            rows.append({"method": method, "mean": stats.mean, "std": stats.std, "n": stats.n, "rank": rank,
                         "verdict_vs_next": self.pairs[(method, nxt)].verdict if nxt is not None else ""})
        return pd.DataFrame(rows)


def _stats(method: str, values: Sequence[float]) -> MethodStats:
    finite = tuple(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not finite:
        raise ValueError(f"method {method!r} has no value to compare (every value is missing or NaN)")
    n = len(finite)
    mean = sum(finite) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else float("nan")
    return MethodStats(method=str(method), mean=mean, std=std, n=n, values=finite)


def compare_methods(values_by_method: Mapping[str, Sequence[float]], *, higher_is_better: bool = True) -> MethodComparison:
    """Rank methods by their mean over seeds and judge every pair with the module's rule (tie when the
    means differ by no more than the larger std; "one seed" when either has a single value).

    `values_by_method`: {method: one value per seed}. Raises ValueError when no method is given or a
    method has no finite value. Ties in the mean keep the input order.
    """
    if not values_by_method:
        raise ValueError("no methods to compare")
    stats = [_stats(str(method), values) for method, values in values_by_method.items()]
    sign = -1.0 if higher_is_better else 1.0
    stats.sort(key=lambda s: sign * s.mean)  # stable: equal means keep the input order
    pairs = {}
    for i, first in enumerate(stats):
        for second in stats[i + 1:]:
            difference = first.mean - second.mean
            spread = max(first.std, second.std) if first.n > 1 and second.n > 1 else float("nan")
            if first.n == 1 or second.n == 1:
                verdict = ONE_SEED
            elif abs(difference) <= spread:
                verdict = TIE
            else:
                verdict = AHEAD
            pairs[(first.method, second.method)] = Pair(first.method, second.method, difference, spread, verdict)
    return MethodComparison(stats={s.method: s for s in stats}, order=[s.method for s in stats], pairs=pairs,
                            higher_is_better=higher_is_better)
