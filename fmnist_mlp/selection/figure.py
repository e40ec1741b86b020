"""The search's ranking figure (PNG, Agg backend: no screen needed): DVC's Vega templates cannot
draw bars with intervals."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SHOWN = 25  # bars at most: the best configurations, then the marked one if it ranks lower


def ranking(path: Path, labels: list[str], values: list[float], xlabel: str, title: str,
            errors: list[float] | None = None, possibly_best: list[bool] | None = None,
            alpha: float | None = None, marked: tuple[int, str] | None = None) -> None:
    """Horizontal bars in rank order (the inputs' order: the best first, drawn on top), each
    label after its rank, every value written at its bar; the axis starts near the smallest
    value so that close values differ. With ``errors`` each bar gets its interval (± error);
    with ``possibly_best`` the bars marked True (those that could be the best, at confidence
    1 - ``alpha``) are drawn in a lighter shade of its colour. At most SHOWN bars, the number
    of the others said; ``marked`` (an index and what it is) is hatched, and shown after them
    if it ranks lower."""
    kept = list(range(min(len(values), SHOWN)))
    if marked and marked[0] not in kept:
        kept.append(marked[0])
    hidden = len(values) - len(kept)
    labels = [f"#{i + 1}  {labels[i]}" for i in kept]
    order = np.arange(len(kept))[::-1]  # bottom to top: the best ends on top
    values = np.asarray(values, dtype=np.float64)[kept][order]  # (K,)
    errors = np.zeros_like(values) if errors is None else np.asarray(errors)[kept][order]  # (K,)
    tied = (np.zeros(len(values), bool) if possibly_best is None
            else np.asarray(possibly_best, bool)[kept][order])  # (K,)
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(values) + 1.6))
    colors = np.where(tied, "#f7c48f", "tab:gray").astype(object)
    colors[-1] = "tab:orange"
    bars = ax.barh(np.arange(len(values)), values, color=list(colors),
                   xerr=errors if errors.any() else None,
                   error_kw={"elinewidth": 0.8, "capsize": 2})
    if marked:
        bars[len(kept) - 1 - kept.index(marked[0])].set(hatch="///", edgecolor="black")
    ax.set_yticks(np.arange(len(values)), [labels[i] for i in order], fontsize=8)
    low, high = (values - errors).min(), (values + errors).max()
    span = high - low or abs(high) or 1.0
    ax.set_xlim(low - 0.05 * span, high + 0.18 * span)
    for y, (v, e) in enumerate(zip(values, errors)):
        ax.text(v + e, y, f" {v:.4f}" + (f" ± {e:.4f}" if e else ""), va="center", fontsize=7)
    if tied.any() or errors.any() or marked:
        from matplotlib.patches import Patch

        handles = [Patch(color="tab:orange", label="best")]
        if alpha is not None:
            handles += [Patch(color="#f7c48f", label=f"could also be the best (Hsu's MCB, "
                                                     f"{1 - alpha:.0%} simultaneous)"),
                        Patch(color="tab:gray", label="ruled out as the best")]
        if marked:
            handles.append(Patch(facecolor="white", edgecolor="black", hatch="///",
                                 label=f"{marked[1]} (#{marked[0] + 1})"))
        lines = xlabel.count("\n") + bool(hidden)  # the x label's lines beyond its first
        below = -(0.6 + 0.2 * lines) / fig.get_figheight()  # under the x label
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below), ncol=2,
                  fontsize=7, frameon=False)
    ax.set_xlabel(xlabel + (f"\n{hidden} more configuration(s) not shown, #{SHOWN + 1} to "
                            f"#{len(kept) + hidden}" if hidden else ""))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend below the axes included
    plt.close(fig)
