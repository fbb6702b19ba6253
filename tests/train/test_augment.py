import torch

from structlearn.train.augment import default_shift, random_shift


def _shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference: move content by (dy, dx) with zero fill."""
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    ys, yd = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    xs, xd = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    out[..., yd, xd] = img[..., ys, xs]
    return out


def test_random_shift_matches_a_reference_translation() -> None:
    x = torch.rand(16, 2, 6, 7)
    g = torch.Generator().manual_seed(1)
    out = random_shift(x, 2, g)
    offsets = torch.randint(0, 5, (2, 16), generator=torch.Generator().manual_seed(1))
    for i in range(16):  # crop at offset o from a 2-px padded image = content moved by 2 − o
        dy, dx = 2 - int(offsets[0, i]), 2 - int(offsets[1, i])
        assert torch.equal(out[i], _shifted(x[i], dy, dx))
    assert len({(int(a), int(b)) for a, b in offsets.T}) > 5  # offsets vary per image


def test_shift_zero_and_one_dimensional_signals() -> None:
    x = torch.rand(8, 1, 1, 40)
    assert random_shift(x, 0, torch.Generator()) is x
    out = random_shift(x, 3, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for i in range(8):  # only moved along the signal axis
        assert any(torch.equal(out[i], _shifted(x[i], 0, d)) for d in range(-3, 4))
    assert default_shift((1, 40)) == 0 and default_shift((8, 8)) == 1 and default_shift((28, 28)) == 2
