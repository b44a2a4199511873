"""What compression methods read from a network: named stages and their taps,
prunable widths, the classifier, and a branch wrapper.

Every network of the book is a :class:`Network`: its forward pass is a
sequence of :class:`Stage` s, each producing one named *tap* (for CNN2D:
``conv1``, ``conv2`` before pooling, ``pool``, ``fc1`` and ``logits``).
:meth:`Network.forward_features` returns every tap, computed exactly as
``forward`` computes them (``forward`` is its ``"logits"``), so distillation
methods read features without hooks. ``prunable`` names the layers whose
width a config can set (their output channels or neurons), ``classifier``
the last layer. :class:`Branched` shares the first stages of a network
between N heads, for on-the-fly ensembles and peer methods (ONE, CL-ILR,
OKDDip).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class Stage:
    """One step of a network's forward pass.

    ``tap`` names its output, ``layers`` the submodules it uses (a branch
    wrapper moves them between trunk and heads), ``run`` computes it from
    the previous stage's output.
    """

    tap: str
    layers: tuple[str, ...]
    run: Callable[[torch.Tensor], torch.Tensor]


class Network(nn.Module):
    """Base of the book's torch networks.

    Subclasses define :meth:`stages` and the class attributes ``prunable``
    (layers whose output width is an argument, in forward order),
    ``classifier`` (the last layer) and ``memory_format`` (the layout its
    weights train and run fastest in on a CPU).
    """

    prunable: ClassVar[tuple[str, ...]] = ()
    classifier: ClassVar[str] = ""
    memory_format: ClassVar[torch.memory_format] = torch.contiguous_format

    def stages(self) -> tuple[Stage, ...]:
        raise NotImplementedError

    @property
    def taps(self) -> tuple[str, ...]:
        """Tap names in forward order (the last is ``"logits"``)."""
        return tuple(stage.tap for stage in self.stages())

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels or neurons of each prunable layer."""
        return tuple(_width(getattr(self, name)) for name in self.prunable)

    def forward_features(self, x: torch.Tensor, after: str | None = None,
                         until: str | None = None) -> dict[str, torch.Tensor]:
        """Every tap from one forward pass, in order.

        ``after``: ``x`` is that tap's value and only the stages that follow
        run; ``until``: stop after that tap.
        """
        stages = self.stages()
        taps = [stage.tap for stage in stages]
        for name in (after, until):
            if name is not None and name not in taps:
                raise ValueError(f"{type(self).__name__} has no tap {name!r}; taps: {', '.join(taps)}")
        begin = 0 if after is None else taps.index(after) + 1
        end = len(stages) if until is None else taps.index(until) + 1
        out = {}
        for stage in stages[begin:end]:
            x = stage.run(x)
            out[stage.tap] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)["logits"]


def _width(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


class Branched(nn.Module):
    """A shared trunk and ``branches`` heads of the same network.

    The trunk runs the stages up to and including tap ``shared``; each head
    is its own copy of the stages after it. :meth:`forward_branches` gives
    every head's taps (the trunk's included), ``forward`` the ensemble (the
    mean of the heads' logits) and :meth:`branch` one head with the trunk as
    a standalone network of the original architecture, which is what an
    online method deploys.

    Parameters
    ----------
    make : builds a fresh network (each call: new weights).
    branches : number of heads (at least 2).
    shared : the last tap of the trunk.
    """

    def __init__(self, make: Callable[[], Network], branches: int, shared: str):
        super().__init__()
        if branches < 2:
            raise ValueError(f"a branched network needs at least 2 heads, got {branches}")
        trunk = make()
        taps = trunk.taps
        if shared not in taps[:-1]:
            raise ValueError(f"shared must be a tap before the logits; {type(trunk).__name__} has "
                             f"{', '.join(taps[:-1])}, got {shared!r}")
        cut = taps.index(shared) + 1
        stages = trunk.stages()
        trunk_layers = [name for stage in stages[:cut] for name in stage.layers]
        head_layers = [name for stage in stages[cut:] for name in stage.layers]
        self.make, self.shared = make, shared
        self.trunk = _without(trunk, head_layers)
        self.heads = nn.ModuleList(_without(make(), trunk_layers) for _ in range(branches))

    def forward_branches(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Each head's taps (trunk taps shared), in head order."""
        trunk = self.trunk.forward_features(x, until=self.shared)
        return [{**trunk, **head.forward_features(trunk[self.shared], after=self.shared)}
                for head in self.heads]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([taps["logits"] for taps in self.forward_branches(x)]).mean(0)

    def branch(self, index: int) -> Network:
        """Head ``index`` with the trunk, as a standalone network (a copy)."""
        network = self.make()
        network.load_state_dict({**self.trunk.state_dict(), **self.heads[index].state_dict()})
        return network


def _without(network: Network, layers: list[str]) -> Network:
    for name in layers:
        delattr(network, name)
    return network
