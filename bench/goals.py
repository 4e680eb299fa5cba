"""Issue 5's targets, as medians, and how a figure is judged against them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    text: str
    at_least: float | None = None
    at_most: float | None = None
    engines: tuple[str, ...] = ("sqlite", "postgres")

    def met(self, value: float) -> bool:
        if self.at_least is not None and value < self.at_least:
            return False
        return not (self.at_most is not None and value > self.at_most)


GOALS: dict[str, Goal] = {
    "enqueue_one": Goal("≥ 650/s", at_least=650),
    "enqueue_bulk": Goal("≥ 20,000/s", at_least=20_000),
    "drain_1": Goal("≥ 1,500/s", at_least=1_500),
    "drain_2": Goal("≥ 2,500/s", at_least=2_500),
    "io_ratio": Goal("≥ 12x", at_least=12),
    "pickup_p50_pg": Goal("≤ 5 ms", at_most=5, engines=("postgres",)),
    "pickup_p99_pg": Goal("≤ 50 ms", at_most=50, engines=("postgres",)),
    "pickup_p50_sqlite": Goal("≤ 1,000 ms", at_most=1_000, engines=("sqlite",)),
    "claim_ratio": Goal("≤ 2x", at_most=2),
    # A dashboard page's reads on a table of a million jobs: well inside a
    # web request, and flat (they read a bounded number of rows).
    "dashboard_page": Goal("≤ 100 ms", at_most=100),
    "signup_p95": Goal("≤ 100 ms", at_most=100),
    "signup_inline": Goal("≥ 2,000 ms (expected)", at_least=2_000),
}


def judge(goal_name: str | None, engine: str, value: float) -> tuple[str, str]:
    """(target text, ✓/✗) for a figure; blanks when no target applies."""
    goal = GOALS.get(goal_name or "")
    if goal is None or engine not in goal.engines:
        return "", ""
    return goal.text, "✓" if goal.met(value) else "✗"
