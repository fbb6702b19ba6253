"""Causal language model with a configurable normalisation scheme: L-DNT (arXiv 2507.17501) and baselines.

    x₀ = [InputNorm](E[idx] + P[0:T])                                  (token + learned positions)
    x_N = blocks(x₀)  (causal self-attention; scheme per :mod:`structlearn.nn.block`)
    logits = [FinalNorm](x_N) · Eᵀ                                       (tied LM head)
    loss = mean cross-entropy of the next token (targets −1 are ignored)

Initialisation (spec dnt.md §1.3, nanoGPT convention): normal std 0.02 for embeddings and linear
weights, 0.02/√(2·n_layer) for the residual output projections W_o and W_2; norm gains 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from structlearn.nn.transformer import Transformer, check_transformer_fields, init_weights
from structlearn.utils.config import DictConfig
from structlearn.utils.validation import check_float, check_id_tensor, check_int, id_range_error


@dataclass(frozen=True)
class GPTConfig(DictConfig):
    """GPT hyper-parameters. ``norm``: a scheme preset (``preln``, ``postln``, ``dnt``, ``dnt-full``,
    ``s2``, ``s3``) optionally with ``+switch`` modifiers; default ``dnt`` is the paper's S5."""

    vocab_size: int = 256
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    norm: str = "dnt"
    norm_type: str = "rms"
    dropout: float = 0.0
    activation: str = "gelu"

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size, minimum=1)
        check_int("block_size", self.block_size, minimum=1)
        check_transformer_fields(self)


class GPT(nn.Module):
    """Decoder-only Transformer LM; ``forward(idx, targets=None) -> (logits, loss)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.transformer = Transformer(
            c.n_layer,
            c.n_embd,
            c.n_head,
            c.norm,
            norm_type=c.norm_type,
            causal=True,
            activation=c.activation,
            dropout=c.dropout,
        )
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied input/output embedding
        init_weights(self, self.transformer, truncated=False, scale_residual=True)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.transformer.blocks

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once); ``non_embedding`` drops the position table."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def _check_tokens(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """Token ids of any integer dtype (the byte corpora are uint8) as int64, (batch, time)."""
        return check_id_tensor(t, name, 2, "token ids")

    def _range_error(self, t: torch.Tensor, name: str, ignore: int | None = None) -> ValueError:
        return id_range_error(t, name, self.config.vocab_size, "vocab_size", "token ids", ignore)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``idx`` (B, T) token ids → logits (B, T, vocab) and the mean next-token loss if ``targets``."""
        idx = self._check_tokens(idx, "idx")
        T = idx.shape[1]
        if not 0 < T <= self.config.block_size:
            raise ValueError(f"sequence length {T} must be in [1, block_size={self.config.block_size}]")
        pos = torch.arange(T, device=idx.device)
        try:
            emb = self.wte(idx)
        except IndexError:
            raise self._range_error(idx, "idx") from None
        logits = self.lm_head(self.transformer(emb + self.wpe(pos)))
        loss = None
        if targets is not None:
            if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
                shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
                raise ValueError(f"targets shape {shape} != idx shape {tuple(idx.shape)}")
            targets = self._check_tokens(targets, "targets")
            try:
                loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            except IndexError:
                raise self._range_error(targets, "targets", ignore=-1) from None
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        suppress_ids: Sequence[int] = (),
    ) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx`` (B, T); the context is cropped to block_size.

        The logits are shifted by their maximum and divided by ``temperature`` in float64, so any
        temperature > 0 is numerically safe; as it goes to 0 sampling becomes greedy (ties drawn
        uniformly). ``suppress_ids`` are never sampled (e.g. a char tokenizer's reserved unknown id 0);
        ``top_k`` counts among the other ids.
        """
        idx = self._check_tokens(idx, "idx")  # a 1-D or list prompt: one line, not an IndexError
        check_int("max_new_tokens", max_new_tokens, minimum=0)
        check_float("temperature", temperature, positive=True)
        if top_k is not None:
            check_int("top_k", top_k, minimum=1)
        V = self.config.vocab_size
        suppressed = sorted({check_int("suppress_ids", i, minimum=0, maximum=V - 1) for i in suppress_ids})
        if len(suppressed) == V:
            raise ValueError(f"suppress_ids holds all {V} token ids: nothing is left to sample")
        for _ in range(max_new_tokens):
            ctx = idx[:, -self.config.block_size :]
            logits = self(ctx)[0][:, -1, :].double()
            logits[:, suppressed] = float("-inf")
            # max → 0 and the rest ≤ 0 before dividing: a tiny temperature gives -inf, never inf or NaN
            # (in float32 a temperature below 1e-45 would even round to 0).
            logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
