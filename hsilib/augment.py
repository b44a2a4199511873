"""Input transforms for training (:func:`hsilib.train.fit`'s ``transform``).

A pixel's label belongs to the centre of its patch, so a transform of a
patch must keep the centre where it is: the eight symmetries of the square
(rotations by quarter turns, with or without a mirror) do, crops and shifts
do not.
"""

from __future__ import annotations

import torch


def random_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each patch of ``x`` (``(N, ..., s, s)``, the last two dimensions
    spatial) under one of the eight symmetries of the square, drawn
    independently per patch with ``generator``; every band alike."""
    codes = torch.randint(0, 8, (x.shape[0],), generator=generator).to(x.device)
    out = torch.empty_like(x)
    for code in range(8):
        chosen = codes == code
        if chosen.any():
            turned = torch.rot90(x[chosen], code % 4, dims=(-2, -1))
            out[chosen] = turned.flip(-1) if code >= 4 else turned
    return out
