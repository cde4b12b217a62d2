"""The prune plan and its outcome as text."""

from __future__ import annotations

from ..prune import Outcome, Plan
from ..text import display
from ..units import human


def render_plan(plan: Plan, outcome: Outcome | None, dry_run: bool) -> str:
    """The plan as a table (what goes, what stays and why), then what was done."""
    lines = [f"Prune plan for {display(plan.root)} ({plan.store})"]
    go = plan.removals
    if go:
        width = max(len(i.kind) for i in go)
        lines += [f"  {i.kind:<{width}}  {human(i.disk):>10}  {display(i.path)}" for i in go]
    lines.append(f"{'Would remove' if dry_run else 'To remove'}: {len(go)} orphan(s), {human(plan.total)}")
    stay = [i for i in plan.items if i.action == "leave"]
    if stay:
        lines.append(f"Left ({len(stay)}):")
        lines += [f"  {i.kind}  {display(i.path)}  {human(i.disk)}: {i.why}" for i in stay]
    if dry_run:
        lines.append("Dry run: nothing was changed; run again with --yes to remove.")
    if outcome is not None:
        for d in outcome.done:
            left = d["left"]
            tail = f"; left: {'; '.join(map(str, left))}" if isinstance(left, list) and left else ""
            lines.append(
                f"removed {d['kind']} {display(str(d['path']))}: {human(int(str(d['bytes'])))} freed{tail}"
            )
        for s in outcome.skipped:
            lines.append(f"kept {s['kind']} {display(s['path'])}: {s['why']}")
        gained = outcome.free_after - outcome.free_before
        lines.append(
            f"Freed {human(outcome.freed)} (allocated bytes removed); file system free: "
            f"{human(outcome.free_before)} before, {human(outcome.free_after)} after ({human(gained)} more)"
        )
    return "\n".join(lines) + "\n"
