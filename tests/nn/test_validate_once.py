"""Values validated once at the public entry still fail with one-line errors where the inner re-check was
removed (issue 16, item 2): Block's dropout (MultiHeadAttention checks it), the bound's power-iteration
kernels (SpectralBound checks power_iters; the public functions keep their checks)."""

import pytest
import torch

from structlearn.nn import Block
from structlearn.optim.power_iteration import (
    gram,
    init_vectors,
    power_iteration,
    power_iteration_gram,
    power_iteration_gram_trusted,
    power_iteration_trusted,
)


@pytest.mark.parametrize("dropout", [-0.1, 1.0, "0.1"])
def test_block_bad_dropout_is_one_line_error(dropout: object) -> None:
    with pytest.raises(ValueError, match="dropout") as exc:
        Block(16, 2, "dnt", dropout=dropout)  # type: ignore[arg-type]
    assert "\n" not in str(exc.value)


def test_trusted_kernels_equal_the_checked_functions() -> None:
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 7, 5, generator=g)
    v = init_vectors(3, 5, generator=g)
    for a, b in zip(power_iteration(A, v, 3), power_iteration_trusted(A, v, 3), strict=True):
        assert torch.equal(a, b)
    G = gram(A)
    for a, b in zip(power_iteration_gram(G, v, 3), power_iteration_gram_trusted(G, v, 3), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="power_iters"):
        power_iteration(A, v, 0)
