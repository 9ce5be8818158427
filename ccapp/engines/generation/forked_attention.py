"""Cascade attention for forked decoding: each prompt's keys and values are kept once.

C2-Eval samples b paths from every (request, k) prompt. Forking a KV cache copies the
prompt's keys and values into every path's row, so each decode step reads the same prefix
b times: at b = 20 on a CPU, attention over those copies was 18% of the run and the copy
itself another 5%, all of it memory traffic. Here the prompt's keys and values stay in one
row per prompt; every decode step attends

- to its prompt's prefix, as one matrix product per prompt for all of its paths at once
  (the queries of a prompt's paths are stacked, so the prefix is read once, not b times);
- to its own generated tokens, kept in a small per-row buffer;

and the two partial softmaxes are merged exactly by their log-sum-exp, as FlashAttention
merges blocks and as vLLM and FlashInfer do for shared prefixes ("cascade inference").
The arithmetic is the same attention; only the summation order differs, at float rounding.

It plugs into transformers through its AttentionInterface: the registered function runs
the model's own SDPA attention unless a `ccapp_fork` state rides along in the forward's
keyword arguments. During the prefill it records each layer's keys and values (the prompt
needs no cache object); during decoding it does the cascade. Only architectures whose
attention is the plain causal softmax over rotary keys qualify (`supports`); the others,
and GPUs (where SDPA's fused kernels have not been measured against this), keep the
forked static cache in ccapp.engines.generation.hf_generate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NAME = "ccapp_forked"

# Plain causal attention over rotary keys, GQA allowed, no attention soft-capping, sinks,
# ALiBi or per-layer sliding windows that could bind: checked by tests per architecture.
ARCHITECTURES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3"})


@dataclass
class ForkState:
    """One `generate` call's prefix keys and values and its rows' own tokens."""

    rows_per_prompt: list[int]  # paths sampled from each prompt, in row order
    max_new_tokens: int
    prefix_mask: Any = None  # [prompts, width] bool: the prompt's real tokens (left padding)
    prefix: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # layer -> (K, V)
    own: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # layer -> row buffers
    step: int = -1  # -1 while prefilling, then the decode step being computed
    slots: Any = None  # [prompts, widest] row index of each prompt's paths (padded)
    slot_of_row: Any = None  # [rows] index into the flattened slots

    def start_decoding(self, prefix_mask: Any) -> None:
        import torch

        device = prefix_mask.device
        self.prefix_mask = prefix_mask.bool()
        widest = max(self.rows_per_prompt)
        slots = torch.zeros((len(self.rows_per_prompt), widest), dtype=torch.long)
        slot_of_row: list[int] = []
        row = 0
        for prompt, count in enumerate(self.rows_per_prompt):
            slots[prompt, :count] = torch.arange(row, row + count)
            slots[prompt, count:] = row  # padding slots repeat a real row; dropped again
            slot_of_row.extend(prompt * widest + j for j in range(count))
            row += count
        self.slots = slots.to(device)
        self.slot_of_row = torch.tensor(slot_of_row, dtype=torch.long, device=device)
        self.step = 0


def supports(model: Any) -> bool:
    """Whether the cascade computes exactly this model's attention."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in ARCHITECTURES:
        return False
    if not getattr(model, "_supports_attention_backend", False):
        return False
    if getattr(config, "attn_logit_softcapping", None):
        return False
    layer_types = getattr(config, "layer_types", None)
    return not layer_types or all(kind == "full_attention" for kind in layer_types)


def window_allows(model: Any, total_tokens: int) -> bool:
    """A sliding window wider than prompt plus continuation never binds."""
    window = getattr(model.config, "sliding_window", None)
    use = getattr(model.config, "use_sliding_window", True)
    return not window or not use or window >= total_tokens


def install(model: Any) -> None:
    """Route the model's attention through the dispatcher (SDPA unless a fork state rides)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, forked_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    if model.config._attn_implementation != NAME:
        model.set_attn_implementation(NAME)


def forked_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    state: ForkState | None = kwargs.pop("ccapp_fork", None)
    if state is None or state.step < 0:
        if state is not None:  # the prefill: keep the prompt's keys and values once
            state.prefix[module.layer_idx] = (key.contiguous(), value.contiguous())
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    return _cascade(module, query, key, value, state, scaling), None


def _cascade(module: Any, query: Any, key: Any, value: Any, state: ForkState, scaling: Any) -> Any:
    """One decode step: softmax over [prefix | own tokens], merged by log-sum-exp."""
    import torch

    layer = module.layer_idx
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    if layer not in state.own:
        shape = (rows, kv_heads, state.max_new_tokens, dim)
        state.own[layer] = (key.new_empty(shape), value.new_empty(shape))
    own_k, own_v = state.own[layer]
    own_k[:, :, state.step] = key[:, :, 0]
    own_v[:, :, state.step] = value[:, :, 0]
    prefix_k, prefix_v = state.prefix[layer]
    prompts, widest = state.slots.shape

    q = query.reshape(rows, kv_heads, group, dim)
    # Prefix: a prompt's paths (× the heads sharing a KV head) are one matrix of queries.
    stacked = q.index_select(0, state.slots.reshape(-1)).reshape(
        prompts, widest, kv_heads, group, dim
    )
    stacked = stacked.permute(0, 2, 1, 3, 4).reshape(prompts, kv_heads, widest * group, dim)
    scores = torch.matmul(stacked, prefix_k.transpose(-1, -2)).float() * scale
    scores = scores.masked_fill(~state.prefix_mask[:, None, None, :], float("-inf"))
    prefix_lse = torch.logsumexp(scores, dim=-1, keepdim=True)
    prefix_out = torch.matmul(torch.exp(scores - prefix_lse).to(prefix_v.dtype), prefix_v)

    def per_row(grouped: Any) -> Any:  # [prompts, kv, widest*group, x] -> [rows, kv, group, x]
        width = grouped.shape[-1]
        flat = grouped.reshape(prompts, kv_heads, widest, group, width).permute(0, 2, 1, 3, 4)
        return flat.reshape(prompts * widest, kv_heads, group, width).index_select(
            0, state.slot_of_row
        )

    prefix_out, prefix_lse = per_row(prefix_out).float(), per_row(prefix_lse)
    # Own tokens: each row's handful of generated keys.
    seen = state.step + 1
    own_scores = torch.matmul(q, own_k[:, :, :seen].transpose(-1, -2)).float() * scale
    own_lse = torch.logsumexp(own_scores, dim=-1, keepdim=True)
    own_out = torch.matmul(torch.exp(own_scores - own_lse).to(own_v.dtype), own_v[:, :, :seen])
    total = torch.logaddexp(prefix_lse, own_lse)
    out = prefix_out * torch.exp(prefix_lse - total) + own_out.float() * torch.exp(own_lse - total)
    return out.to(query.dtype).reshape(rows, heads, 1, dim).transpose(1, 2)
