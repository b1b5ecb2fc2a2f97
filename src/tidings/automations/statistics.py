"""The statistics of an A/B test's report: a 95 % confidence interval for each
variant's rate (Wilson score interval) and a two-proportion z-test between the best
variant and each other. A few lines of the standard library: neither scipy nor
statsmodels is in the lock, and these formulas need nothing they bring."""

from __future__ import annotations

import math

# The two-sided 95 % quantile of the standard normal distribution, Φ⁻¹(0.975).
Z_95 = 1.959963984540054
# Below this p-value a difference is called significant (95 % confidence).
ALPHA = 0.05


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of `successes` out of `trials` (shares, 0 to 1), or
    None without trials. Wilson, E. B. (1927), "Probable inference, the law of
    succession, and statistical inference", JASA 22 (158): 209-212; the form used is
    the one in Newcombe, R. G. (1998), Statistics in Medicine 17: 857-872, method 3:
    (p + z²/2n ± z·√(p(1-p)/n + z²/4n²)) / (1 + z²/n). Unlike p ± z·√(p(1-p)/n) it
    stays within 0..1 and is not empty at 0 or n successes."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError("successes must be between 0 and trials")
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    scale = 1 + z2 / trials
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """The two-sided p-value of the pooled two-proportion z-test of x1/n1 against x2/n2
    (e.g. Agresti, "Categorical Data Analysis", 3rd ed., 2013, section 3.1): z =
    (p1 - p2) / √(p(1-p)(1/n1 + 1/n2)) with p = (x1 + x2) / (n1 + n2), p-value =
    erfc(|z| / √2). None without trials on either side; 1 when both rates are 0 or
    both 1 (nothing differs)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def significant(p_value: float | None) -> bool:
    return p_value is not None and p_value < ALPHA
