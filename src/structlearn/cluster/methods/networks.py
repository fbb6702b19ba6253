"""The networks of the deep clustering estimators.

:func:`relu_mlp` (NeuNcut's membership network, SENet's query/key networks), SENet's
:class:`SelfExpressiveNet` (arXiv 2110.04318 eq. 5), :func:`input_scale` / :class:`InputScale` (the one
scale factor NeuNcut and SENet divide raw features by), and the two-head network of the rate-reduction
clustering family (MLC, CPP, PRO-DSC, TR2C), :class:`TwoHeadNet`:

A trunk f maps inputs to a hidden representation h; two linear heads give row-L2-normalised outputs

    Z = normalize(W_z h)   (feature head: the learned representation)
    Y = normalize(W_c h)   (cluster head: its Gram |YYᵀ| becomes the affinity / membership)

After a warm-up that trains only trunk + feature head on the total coding rate, the feature head is
copied into the cluster head (:meth:`TwoHeadNet.copy_feature_head`), so the first affinity is already
meaningful rather than random (PRO-DSC arXiv 2503.17288 §3; CPP; TR2C arXiv 2506.21249).

Sizes are trusted: the estimators build these networks from their validated configs (``hidden_dims``
by :func:`~structlearn.cluster.methods.base.check_layer_widths`, ``out_dim`` in ``__post_init__``) and
``in_dim`` from validated features (at least one column).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

# Inputs whose root-mean-square row norm is within this factor of 1 are passed through unchanged.
UNIT_SCALE_TOLERANCE = 0.01


def rms_row_norm(X: torch.Tensor) -> float:
    """sqrt(mean_i ‖x_i‖²) in float64: one number for the scale of a feature matrix."""
    return float(X.double().pow(2).sum(dim=1).mean().sqrt())


class InputScale(nn.Module):
    """x ↦ x / s with a fixed scalar s (a buffer, so it travels with the state dict).

    The deep estimators' defaults (learning rates, initialisations) are set for unit-norm rows, the
    inputs of all three papers. Raw features (Wine's proline ≈ 10³, pixel values ≈ 10¹) make the first
    Adam steps, which move every weight by ≈ lr whatever the gradient's size, change the logits by
    orders of magnitude more; :func:`input_scale` picks s from the training set.
    """

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.scale

    def extra_repr(self) -> str:
        return f"scale={float(self.scale):.4g}"


def input_scale(X: torch.Tensor) -> float:
    """The training set's RMS row norm, or exactly 1.0 when it is within ``UNIT_SCALE_TOLERANCE`` of 1
    (unit-row features, e.g. every table dataset of issue 10, then train bit for bit as before)."""
    s = rms_row_norm(X)
    if not s > 0.0:  # all-zero input: nothing to scale (and no division by zero)
        return 1.0
    return 1.0 if abs(s - 1.0) <= UNIT_SCALE_TOLERANCE else s


def relu_mlp(
    in_dim: int, hidden_dims: Sequence[int], out_dim: int, out_activation: nn.Module | None = None
) -> nn.Sequential:
    """D → hidden … (ReLU) → out [→ activation]; Kaiming-uniform hidden layers, Xavier-uniform output,
    zero biases (the initialisation of SENet's query/key nets and NeuNcut's membership net)."""
    layers: list[nn.Module] = []
    prev = in_dim
    for h in hidden_dims:
        lin = nn.Linear(prev, h)
        nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
        prev = h
    out = nn.Linear(prev, out_dim)
    nn.init.xavier_uniform_(out.weight)
    nn.init.zeros_(out.bias)
    layers.append(out)
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


class _MLP(nn.Module):
    """D → hidden… (ReLU) → out (tanh); Kaiming-uniform hidden layers, Xavier output, zero biases."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.net = relu_mlp(in_dim, hidden, out_dim, out_activation=nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfExpressiveNet(nn.Module):
    """Query and key networks plus the shared soft-threshold b: c_ij = α·T_b(q(x_i)ᵀ k(x_j))."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, alpha_scale: float = 1.0) -> None:
        super().__init__()
        self.query = _MLP(in_dim, hidden, out_dim)
        self.key = _MLP(in_dim, hidden, out_dim)
        self.threshold = nn.Parameter(torch.zeros(()))
        self.alpha = float(alpha_scale) / out_dim

    def coefficients(self, Q: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """α·T_b(Q Kᵀ) for query embeddings Q (m × h) and key embeddings K (n × h)."""
        return self.shrink(Q @ K.T)

    def shrink(self, S: torch.Tensor) -> torch.Tensor:
        """α·T_b(S): odd and non-decreasing in |S|, so top-k by |S| equals top-k by |c|."""
        return self.alpha * torch.sign(S) * torch.relu(S.abs() - self.threshold)


class TwoHeadNet(nn.Module):
    """MLP trunk (Linear → [BatchNorm] → ReLU per hidden layer) and two normalised linear heads."""

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int] = (512, 512),
        out_dim: int = 32,
        *,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_dim
        for i, h in enumerate(hidden_dims):
            layers.append(nn.Linear(prev, h))
            # BatchNorm only after the first layer, as in the CPP/PRO-DSC trunk.
            if batch_norm and i == 0:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            prev = h
        self.trunk = nn.Sequential(*layers)
        self.feature_head = nn.Linear(prev, out_dim)
        self.cluster_head = nn.Linear(prev, out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Z, Y): row-normalised outputs of the feature and cluster heads."""
        h = self.trunk(x)
        return F.normalize(self.feature_head(h), dim=1), F.normalize(self.cluster_head(h), dim=1)

    @torch.no_grad()
    def copy_feature_head(self) -> None:
        """Initialise the cluster head with the feature head's weights (end of the TCR warm-up)."""
        self.cluster_head.load_state_dict(self.feature_head.state_dict())
