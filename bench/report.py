"""The markdown table: one per database, targets next to the figures."""

import os
import platform

from .goals import judge
from .stats import Figure

ENGINE_TITLES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}


def number(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        digits = 2 if value < 10 else 1 if value < 100 else 0
        return f"{value:,.{digits}f} ms"
    return f"{value:,.0f}/s" if unit == "jobs/s" else f"{value:,.1f} {unit}"


def table(engine: str, figures: list[Figure], server_version: str = "") -> str:
    title = f"{ENGINE_TITLES[engine]} {server_version}".strip()
    if engine == "sqlite":
        title += " (WAL, IMMEDIATE transactions)"
    lines = [
        f"### {title}",
        "",
        "| § | measure | median | spread (min-max) | runs | target | ✓/✗ |",
        "|---|---|---:|---:|---:|---|:-:|",
    ]
    notes: list[str] = []
    for figure in figures:
        low, high = figure.spread
        spread = (
            "—"
            if len(figure.values) == 1
            else (f"{number(low, figure.unit)} - {number(high, figure.unit)}")
        )
        target, verdict = judge(figure.goal, engine, figure.median)
        label = figure.label
        if figure.note:
            if figure.note not in notes:
                notes.append(figure.note)
            label += f" [{notes.index(figure.note) + 1}]"
        lines.append(
            f"| {figure.section} | {label} | {number(figure.median, figure.unit)} | {spread} "
            f"| {len(figure.values)} | {target} | {verdict} |"
        )
    lines.append("")
    lines.extend(f"[{n}] {note}" for n, note in enumerate(notes, 1))
    # The claim's plan, when the big table slows claiming past its target.
    slow = any(
        judge(f.goal, engine, f.median)[1] == "✗" for f in figures if f.goal == "claim_ratio"
    )
    for figure in figures:
        plan = figure.extra.get("plan")
        if plan and slow:
            lines += ["", f"Claim plan on the big table ({engine}):", "", "```", plan, "```"]
    return "\n".join(lines)


def header(runs: int, quick: bool) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"## jobs benchmark{' (--quick: small counts)' if quick else ''}\n\n"
        f"{os.cpu_count()} CPUs, load average at start {load}; Python "
        f"{platform.python_version()}; every figure is the median of {runs} run(s) unless its "
        "runs column says otherwise; spread is the run-to-run min-max. Throughputs count "
        "from the first claim to the last finish (worker start-up excluded)."
    )
