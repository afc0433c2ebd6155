"""Write the offline evaluation as Markdown + PNG (+ JSON): confusion matrices, accuracy per
class and benchmark, and accuracy against relative cost per labelled set."""

from __future__ import annotations

import json
from pathlib import Path

from pickspin.core.settings import COMPLEXITY_CLASSES
from pickspin.training.evaluate import random_mix
from pickspin.training.labels import TIER_MAPS
from pickspin.training.offline import ROUTERS, Evaluation, summary

CONFUSION_PNG = "classifier-confusion.png"
ROUTING_PNG = "routing-quality.png"
PICK_PNG = "whole-pick.png"


def plot_confusion(ev: Evaluation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ROUTERS), figsize=(4.2 * len(ROUTERS), 4))
    for ax, name in zip(axes, ROUTERS, strict=True):
        m = ev.classifier[name].confusion
        ax.imshow(m, cmap="Blues")
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=9)
        ax.set_xticks(range(3), COMPLEXITY_CLASSES)
        ax.set_yticks(range(3), COMPLEXITY_CLASSES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("label")
        ax.set_title(f"{name}: accuracy {ev.classifier[name].accuracy:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_routing(ev: Evaluation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sources = list(ev.routing)
    fig, axes = plt.subplots(1, len(sources), figsize=(5.2 * len(sources), 4.4), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        by_router = ev.routing[source]
        any_q = next(iter(by_router.values()))
        tiers = [any_q.small, any_q.medium, any_q.large]
        xs = np.linspace(any_q.small.cost, any_q.large.cost, 50)
        ax.plot(xs, [random_mix(tiers, x) for x in xs], "k--", label="random mix")
        for name, q in by_router.items():
            ax.plot([p.cost for p in q.curve], [p.accuracy for p in q.curve], "-",
                    label=f"{name} (APGR {q.apgr:.2f})")
        for p, marker in zip(tiers, ("o", "s", "^"), strict=True):
            ax.plot([p.cost], [p.accuracy], "k" + marker, label=p.label)
        ax.plot([any_q.oracle.cost], [any_q.oracle.accuracy], "r*", ms=10, label="oracle")
        ax.set_title(f"{source} (held-out, n={ev.rows.get('test:' + source, 0)})")
        ax.set_xlabel("relative cost (always-large = 1)")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pct(x: float | None) -> str:
    return "not reached" if x is None else f"{100 * x:.1f} %"


def markdown(ev: Evaluation) -> str:
    lines = ["# Complexity routing: offline evaluation", "",
             f"Held-out rows: {ev.rows['test']} test. quality(L, k) comes from train + dev rows, "
             "the policy's expected tier costs from dev rows; split by hashing the prompt id.",
             "",
             f"## Classifier accuracy (held-out rows with real outcomes: {ev.rows['test']}; "
             f"the most common training class, `{ev.most_common[0]}`, scores "
             f"{ev.most_common[1]:.3f})", "",
             "| router | accuracy | low | medium | high |", "|---|---|---|---|---|"]
    for name in ROUTERS:
        m = ev.classifier[name]
        lines.append(f"| {name} | {m.accuracy:.3f} | " +
                     " | ".join(f"{m.per_class[c]:.3f}" for c in COMPLEXITY_CLASSES) + " |")
    if ev.classifier_proxy:
        lines += ["", f"Proxy-labelled held-out rows ({ev.rows.get('test_proxy', 0)}; not a "
                  "headline figure): " + ", ".join(f"{n} {m.accuracy:.3f}"
                                                   for n, m in ev.classifier_proxy.items())
                  + "."]
    if ev.calibration:
        lines += ["", "Calibration of the semantic router's P(success) per tier on held-out "
                  "rows: " + "; ".join(f"{k} Brier {v['brier']:.3f}, ECE {v['ece']:.3f}"
                                       for k, v in ev.calibration.items()) + "."]
    if ev.hybrid_dev_apgr:
        lines += ["", "Hybrid threshold chosen on dev (mean APGR over the sets): " + ", ".join(
            f"{t:g} → {v:.3f}" for t, v in ev.hybrid_dev_apgr.items())
            + f"; chosen {ev.hybrid_threshold_on_dev:g} (ties: every class's dev recall ≥ 0.35, "
            "then dev class accuracy)."]
    if ev.floor is not None:
        fl = ev.floor
        lines += ["", f"Trade-down bound of the `{fl.profile}` profile tried on dev with the "
                  f"{ev.pick_router} router (`{fl.profile}/multi-objective` accuracy @ cost "
                  "relative to always-large, per set): " + "; ".join(
                      f"{b:g} → " + ", ".join(f"{src} {a:.3f} @ {c:.2f}"
                                              for src, (a, c) in by.items())
                      for b, by in fl.dev.items())
                  + f"; best within the dev cost budget: {fl.relevance:g} (what serves is "
                  "the values file's `routing.tradeDown`)."]
    lines += ["", "Per-class figures are recall. Per benchmark:", "",
              "| benchmark | " + " | ".join(ROUTERS) + " |", "|---|" + "---|" * len(ROUTERS)]
    benches = sorted(ev.classifier["semantic"].per_benchmark)
    for b in benches:
        lines.append(f"| {b} | " + " | ".join(
            f"{ev.classifier[r].per_benchmark.get(b, 0):.3f}" for r in ROUTERS) + " |")
    lines += ["", f"Hybrid left {100 * ev.hybrid_share_keyword:.1f} % of test prompts to the "
              "keyword verdict.", "", f"![confusion matrices]({CONFUSION_PNG})", "",
              "## Routing quality (held-out rows with real per-model outcomes)", "",
              "Tier costs (relative; the cheapest service's GPU-hour price among the "
              "configured models each tier's stand-ins represent): " +
              ", ".join(f"{t} {c:.2f}" for t, c in ev.tier_costs.items()) +
              "; RouterBench rows use their real per-prompt dollar cost.", "",
              "| set | router | APGR | random-mix APGR | cost to reach always-large accuracy "
              "| cost for 50 % / 80 % of the gap (random mix) | best accuracy "
              "| min margin over random mix | small / medium / large / oracle |",
              "|---|---|---|---|---|---|---|---|---|"]
    for source, by_router in ev.routing.items():
        for name, q in by_router.items():
            lines.append(
                f"| {source} | {name} | {q.apgr:.3f} | {q.random_mix_apgr:.3f} | "
                f"{_pct(q.cost_to_match_large)} | {_pct(q.cost_at_gap[0])} / "
                f"{_pct(q.cost_at_gap[1])} ({_pct(q.random_cost_at_gap[0])} / "
                f"{_pct(q.random_cost_at_gap[1])}) | {q.best_accuracy:.3f} | "
                f"{q.min_margin_over_random:+.3f} | {q.small.accuracy:.3f} / "
                f"{q.medium.accuracy:.3f} / {q.large.accuracy:.3f} / {q.oracle.accuracy:.3f} |")
    lines += ["", f"![accuracy against cost]({ROUTING_PNG})", "", "Tier maps:", ""]
    lines += [f"- **{s}**: small = {t.small}, medium = {t.medium}, large = {t.large}. {t.note}"
              for s, t in TIER_MAPS.items()]
    lines += ["", "## quality(L, k) estimated on train + dev rows (written to the values file)",
              "",
              "| model | low | medium | high |", "|---|---|---|---|"]
    for model, table in ev.quality_table.items():
        lines.append(f"| {model} | " + " | ".join(f"{table[c]:.2f}" for c in COMPLEXITY_CLASSES)
                     + " |")
    lines += _pick_section(ev)
    lines += ["", "Machine-readable figures: `routing-report.json`.", ""]
    return "\n".join(lines)


def _pick_section(ev: Evaluation) -> list[str]:
    from pickspin.training.pick_replay import table3

    if not ev.pick:
        return []
    lines = ["", f"## The whole Pick ({ev.pick_router} router + Eq. 2 selection + the "
             "configured matrix), held-out rows with real outcomes", "",
             "Each configured model inherits the real outcomes of its stand-in per set "
             "(`—`: none; its services count as unhealthy on that set): " + "; ".join(
                 f"{src}: " + ", ".join(f"{m} → {who or '—'}" for m, who in by.items())
                 for src, by in ev.stand_ins.items()) + ". Services run on their warm "
             "priors; cost per query is relative to always-large (deepseek-r1's cheapest "
             "service). `random-assignment` is the expectation of picking a model "
             "uniformly (no floor): every model with an outcome, equally weighted; "
             "`<profile>/random` and `<profile>/latency` are the named strategies under the "
             "profile's floor.", ""]
    for profile in sorted({k.split("/")[0] for by in ev.pick.values() for k in by
                           if "/" in k}):
        lines += [f"### {profile}", "", *table3(ev.pick, profile), ""]
    lines += [f"![whole Pick]({PICK_PNG})"]
    return lines


def plot_pick(ev: Evaluation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(ev.pick)
    fig, axes = plt.subplots(1, len(sources), figsize=(5.2 * len(sources), 4.4), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        for name, f in sorted(ev.pick[source].items()):
            marker = "o" if "/multi-objective" in name else "x" if "/" in name else "s"
            ax.plot([f.relative_cost], [f.accuracy], marker, label=name)
        ax.set_title(f"{source}: whole Pick (held-out)")
        ax.set_xlabel("cost per query (always-large = 1)")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(ev: Evaluation, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = summary(ev)
    plot_confusion(ev, out_dir / CONFUSION_PNG)
    plot_routing(ev, out_dir / ROUTING_PNG)
    if ev.pick:
        plot_pick(ev, out_dir / PICK_PNG)
    (out_dir / "routing-report.json").write_text(json.dumps(data, indent=2) + "\n",
                                                 encoding="utf-8")
    md = out_dir / "routing-report.md"
    md.write_text(markdown(ev), encoding="utf-8")
    return md
