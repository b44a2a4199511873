"""The paper's schematic figures, drawn: the pruning pipeline (Fig. 3), the
three fine-tuning strategies (Fig. 4) and the three distillation schemes
(Fig. 5). The paper's text copy has no images; these follow its words
(Sections 3.2.1 and 3.4.2)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

COLORS = {"train": "#cfe2f3", "prune": "#f4cccc", "tune": "#d9ead3", "net": "#fff2cc",
          "loss": "#ead1dc"}


def _box(ax, x: float, y: float, text: str, kind: str, width: float = 1.6, height: float = 0.6) -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", fc=COLORS[kind], ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "",
           style: str = "-|>", dashed: bool = False) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10, color="0.3",
                                 ls="--" if dashed else "-", shrinkA=2, shrinkB=2))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center",
                fontsize=7, color="0.3")


def _canvas(width: float, height: float, title: str) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    return fig, ax


def pruning_pipeline() -> plt.Figure:
    """Fig. 3: train a large network, prune it by a criterion, fine-tune."""
    fig, ax = _canvas(8, 1.6, "The three-stage pruning pipeline (Fig. 3)")
    steps = [("train the full network\n(CNN2D)", "train"),
             ("prune filters and neurons\nby a criterion", "prune"),
             ("fine-tune the\nnarrow network", "tune")]
    for i, (text, kind) in enumerate(steps):
        _box(ax, 1.2 + 2.6 * i, 0.5, text, kind, width=2.1)
        if i:
            _arrow(ax, (2.3 + 2.6 * (i - 1), 0.5), (0.1 + 2.6 * i, 0.5))
    ax.set_xlim(0, 7.6)
    ax.set_ylim(0, 1)
    return fig


def finetuning_strategies() -> plt.Figure:
    """Fig. 4: one-shot (I), iterative layer by layer (II) and multi-pass (III)."""
    fig, ax = _canvas(9, 3.2, "Fine-tuning strategies (Fig. 4)")
    rows = [("I  one-shot", [("prune all\nlayers", "prune"), ("fine-tune", "tune")]),
            ("II  iterative", [("prune\nconv1", "prune"), ("fine-tune", "tune"), ("prune\nconv2", "prune"),
                               ("fine-tune", "tune"), ("prune\nfc1", "prune"), ("fine-tune", "tune")]),
            ("III  multi-pass", [("prune all\nto pass 1", "prune"), ("fine-tune", "tune"),
                                 ("prune all\nto pass 2", "prune"), ("fine-tune", "tune"),
                                 ("prune all\nto target", "prune"), ("fine-tune", "tune")])]
    for r, (name, steps) in enumerate(rows):
        y = 2.5 - 1.0 * r
        ax.text(0.05, y, name, ha="left", va="center", fontsize=9, weight="bold")
        for i, (text, kind) in enumerate(steps):
            _box(ax, 2.1 + 1.25 * i, y, text, kind, width=1.05, height=0.55)
            if i:
                _arrow(ax, (2.62 + 1.25 * (i - 1), y), (1.58 + 1.25 * i, y))
    ax.set_xlim(0, 9.5)
    ax.set_ylim(0, 3)
    return fig


def distillation_schemes() -> plt.Figure:
    """Fig. 5: offline (a trained teacher guides a student), online (peers or
    branches teach each other while they train) and self distillation (a
    network teaches itself: its past predictions, other samples of a class,
    other views of a sample)."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
    for ax in axes:
        ax.set_axis_off()
        ax.set_xlim(0, 3)
        ax.set_ylim(0, 2)
    ax = axes[0]
    ax.set_title("offline", fontsize=10)
    _box(ax, 1.5, 1.55, "teacher (trained, frozen)", "net", width=2.4)
    _box(ax, 1.5, 0.45, "student", "train", width=2.4)
    _arrow(ax, (1.5, 1.25), (1.5, 0.75), "soft targets, features")
    ax = axes[1]
    ax.set_title("online", fontsize=10)
    _box(ax, 0.75, 1.0, "peer or\nbranch 1", "train", width=1.1, height=0.8)
    _box(ax, 2.25, 1.0, "peer or\nbranch 2", "train", width=1.1, height=0.8)
    _arrow(ax, (1.3, 1.15), (1.7, 1.15), style="<|-|>")
    ax.text(1.5, 0.35, "trained together, from scratch", ha="center", fontsize=7, color="0.3")
    ax = axes[2]
    ax.set_title("self", fontsize=10)
    _box(ax, 1.5, 1.0, "one network", "train", width=1.6, height=0.8)
    ax.add_patch(FancyArrowPatch((2.3, 1.2), (2.3, 0.8), connectionstyle="arc3,rad=-1.6",
                                 arrowstyle="-|>", mutation_scale=10, color="0.3"))
    ax.text(1.5, 0.3, "its own past predictions, class\nmates or distorted views", ha="center",
            fontsize=7, color="0.3")
    fig.suptitle("Distillation schemes (Fig. 5)", fontsize=10, y=1.1)
    return fig
