"""How often each selection rule finds the demo's planted causes, from finished ``validate-demo`` runs.

Each ``--runs`` folder is the ``--out`` of one ``python -m explain_engine validate-demo`` run (one phantom stream):
its cached sweep and its ``validation.json``, whose rows give the verdict (pathology, shortcut, both, other) of
every measured dimension (the strongest ones under each aggregate). For every aggregate x rule it selects
dimensions again from the cached deltas (bootstrap seeded, so reruns agree) and prints, per stream, whether a
dimension judged pathology / shortcut is selected or borderline, with the effect and interval of the strongest
such dimension; then, per rule, in how many streams each cause was selected.

    .venv/bin/python bench/selection_rules.py --runs var/valsel-4001 var/valsel-4002 var/valsel-4003
        [--delta 0.3] [--resamples 1000] [--confidence 0.9]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from explain_engine.checkpoints import load_generator
from explain_engine.selection import select_dimensions
from explain_engine.sweep import open_deltas

RULES = [
    ("mean_abs", "estimate"),
    ("mean_abs", "interval"),
    ("fraction", "estimate"),
    ("fraction", "interval"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", nargs="+", type=Path, required=True)
    parser.add_argument("--generator", default="explain_engine/assets/demo/generator.pt")
    parser.add_argument("--delta", type=float, default=0.3)
    parser.add_argument("--min-fraction", type=float, default=0.1)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.9)
    args = parser.parse_args()
    layout = load_generator(args.generator, device="cpu").style_layout
    hits: dict[tuple, dict[str, list[str]]] = {}
    for run in args.runs:
        report = json.loads((run / "validation.json").read_text())
        n = report["num_images"]
        (sweep_dir,) = sorted(run.glob(f"sweep-*-{n}-images-*"))
        deltas, _, meta = open_deltas(sweep_dir)
        verdicts = {row["dim"]: row["verdict"] for row in report["rows"]}
        stream = report["settings"].get("stream")
        print(
            f"stream {stream}: {n} phantoms, {len(verdicts)} dimensions measured, deltas in {meta['precision']}"
        )
        for aggregate, rule in RULES:
            sel = select_dimensions(
                np.asarray(deltas),
                layout,
                aggregate=aggregate,
                delta=args.delta,
                min_fraction=args.min_fraction,
                rule=rule,
                resamples=args.resamples,
                confidence=args.confidence,
            )
            line = []
            for cause in ("pathology", "shortcut"):
                judged = [e for e in sel.ranking if verdicts.get(e.dim) in (cause, "both")]
                status = (
                    "selected"
                    if any(e.selected for e in judged)
                    else "borderline"
                    if any(e.borderline for e in judged)
                    else "missed"
                )
                hits.setdefault((aggregate, rule), {}).setdefault(cause, []).append(status)
                if judged:
                    e = judged[0]
                    line.append(
                        f"{cause} {status} (dim {e.dim}, rank {e.rank + 1}, effect {e.effect:.3f} "
                        f"[{e.effect_lower:.3f}, {e.effect_upper:.3f}], selected in {e.frequency:.2f})"
                    )
                else:
                    line.append(f"{cause} missed (no measured dimension judged so)")
            print(
                f"  {aggregate:8s} {rule:8s} selected {len(sel.selected):3d}, borderline {len(sel.borderline):3d}: "
                + "; ".join(line)
            )
    print("summary (streams where the cause is selected / selected or borderline):")
    for (aggregate, rule), causes in hits.items():
        parts = []
        for cause, statuses in causes.items():
            selected = statuses.count("selected")
            either = selected + statuses.count("borderline")
            parts.append(f"{cause} {selected}/{len(statuses)} ({either}/{len(statuses)} with borderline)")
        print(f"  {aggregate} {rule}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
