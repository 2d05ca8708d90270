"""Agreement between readers: Cohen's kappa (two readers) and Fleiss' kappa (any number), and the intervals
of a reader study's proportions and mean changes; pure functions.

Both return ``None`` when kappa is undefined: every answer fell into one category, so chance agreement is
already perfect and there is nothing left for the readers to agree on beyond it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np
from scipy import stats

#: Below this many shared items a kappa says little: its interval spans most of [-1, 1].
MIN_KAPPA_ITEMS = 10


def observed_agreement(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Fraction of items on which two readers gave the same answer."""
    _check_pairs(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two readers' answers ``a[i]``, ``b[i]`` on the same items.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e = sum_k p_a(k) p_b(k) the
    agreement expected from each reader's own answer frequencies.
    """
    _check_pairs(a, b)
    n = len(a)
    p_o = observed_agreement(a, b)
    count_a, count_b = Counter(a), Counter(b)
    p_e = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_table(ratings: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """Counts ``[item][category]`` of the answers ``ratings[item]`` (one answer per reader), categories in
    first-seen order."""
    categories: dict[Hashable, int] = {}
    for answers in ratings:
        for answer in answers:
            categories.setdefault(answer, len(categories))
    table = []
    for answers in ratings:
        row = [0] * len(categories)
        for answer in answers:
            row[categories[answer]] += 1
        table.append(row)
    return table


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from ``table[i][j]``: how many readers put item i in category j.

    Every item must have the same number n >= 2 of answers. P_i = (sum_j n_ij^2 - n) / (n (n - 1)) is the
    agreement on item i, P = mean_i P_i, p_j the share of all answers in category j, P_e = sum_j p_j^2, and
    kappa = (P - P_e) / (1 - P_e).
    """
    if not table:
        raise ValueError("Fleiss' kappa needs at least one item.")
    raters = {sum(row) for row in table}
    if len(raters) != 1:
        raise ValueError("Every item needs the same number of answers for Fleiss' kappa.")
    n = raters.pop()
    if n < 2:
        raise ValueError("Fleiss' kappa needs at least two answers per item.")
    items = len(table)
    per_item = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in table]
    p_bar = sum(per_item) / items
    shares = [sum(row[j] for row in table) / (items * n) for j in range(len(table[0]))]
    p_e = sum(p * p for p in shares)
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def kappa(ratings: Sequence[Sequence[Hashable]]) -> tuple[str, float | None]:
    """("cohen" or "fleiss", kappa) for ``ratings[item][reader]``: Cohen's for two readers, else Fleiss'."""
    if not ratings:
        raise ValueError("Agreement needs at least one item answered by every reader.")
    readers = len(ratings[0])
    if readers == 2:
        return "cohen", cohen_kappa([r[0] for r in ratings], [r[1] for r in ratings])
    return "fleiss", fleiss_kappa(fleiss_table(ratings))


def kappa_interval(
    ratings: Sequence[Sequence[Hashable]], *, level: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of :func:`kappa` over the items (``ratings[item][reader]``).

    Items are drawn with replacement ``resamples`` times with a fixed seed, so the same answers always give the
    same interval. Each resample's kappa is the same formula as :func:`cohen_kappa` (two readers) or
    :func:`fleiss_kappa`, computed for all resamples at once. Resamples whose kappa is undefined (all answers
    alike) are left out; None when more than half of them are, or with fewer than two items.
    """
    n = len(ratings)
    if n < 2:
        return None
    table = np.asarray(fleiss_table(ratings), dtype=np.float64)  # [items, categories]
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    readers = len(ratings[0])
    if readers == 2:
        categories: dict[Hashable, int] = {}
        for row in ratings:
            for answer in row:
                categories.setdefault(answer, len(categories))
        first = np.zeros((n, len(categories)))
        second = np.zeros((n, len(categories)))
        first[np.arange(n), [categories[row[0]] for row in ratings]] = 1.0
        second[np.arange(n), [categories[row[1]] for row in ratings]] = 1.0
        agree = (first * second).sum(axis=1)
        p_o = agree[picks].mean(axis=1)
        p_e = (first[picks].mean(axis=1) * second[picks].mean(axis=1)).sum(axis=1)
    else:
        per_item = ((table * table).sum(axis=1) - readers) / (readers * (readers - 1))
        p_o = per_item[picks].mean(axis=1)
        shares = table[picks].sum(axis=1) / (n * readers)
        p_e = (shares * shares).sum(axis=1)
    defined = p_e < 1.0 - 1e-12
    if 2 * int(defined.sum()) < resamples:
        return None
    values = (p_o[defined] - p_e[defined]) / (1.0 - p_e[defined])
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def kappa_strength(value: float | None) -> str:
    """Landis and Koch's words for a kappa value."""
    if value is None:
        return "undefined"
    if value < 0.0:
        return "poor"
    for bound, words in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if value <= bound:
            return words
    return "almost perfect"


def _check_pairs(a: Sequence[Hashable], b: Sequence[Hashable]) -> None:
    if len(a) != len(b):
        raise ValueError(f"The readers answered different numbers of items ({len(a)} and {len(b)}).")
    if not a:
        raise ValueError("Agreement needs at least one item answered by both readers.")


#: The standard normal quantile of a two-sided 95 % interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson's score interval of a proportion ``successes / total`` (95 % by default); None for no trials.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and does not collapse to a point at 0 or 1.
    """
    if total <= 0:
        return None
    if not 0 <= successes <= total:
        raise ValueError("successes must lie between 0 and total.")
    p = successes / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z * np.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / (1 + z2 / total)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def mean_interval(
    values: Sequence[float], level: float = 0.95
) -> tuple[float, tuple[float, float] | None] | None:
    """(mean, Student-t interval of the mean) of ``values``; the interval is None for a single value, and
    the whole result None for none."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if array.size < 2:
        return mean, None
    half = float(stats.t.ppf(0.5 + level / 2, array.size - 1) * array.std(ddof=1) / np.sqrt(array.size))
    return mean, (mean - half, mean + half)
