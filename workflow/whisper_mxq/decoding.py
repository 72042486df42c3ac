"""Batched greedy decoding from precomputed encoder states.

Picks the tokens `model.generate(encoder_outputs=..., language=..., task=...)` picks:
prompt `<|sot|><|xx|><|task|><|notimestamps|>`, the generation config's
`suppress_tokens` at every step and `begin_suppress_tokens` at the first, argmax.

Why not transformers' own `generate`: a decode step of a Whisper decoder is a few
hundred small kernel launches, so on a GPU the decode is launch-bound, and generate adds
its own per-step work (logits processors, stopping criteria, cache bookkeeping). Here the
decoder's own modules run against a static key/value cache, so one step has fixed shapes
and on CUDA is captured once as a CUDA graph and replayed: one launch per token.
Measured end to end on an H200 (a calibrate job of 1000 clips in its own process,
whisper-small shape, 64 tokens, fp16, batch 32; tests/benchmarks/decoders.py): this
decoder 30.7 s, `generate` with a static cache 49.6 s (1.62x), the same with
torch.compile 66.3 s (its compilation is part of a job's time). The tokens agree with
`generate`'s (tests/test_batching.py, and 8/8 in decoders.py --check).
"""

from __future__ import annotations

import contextlib

# torch is imported inside the functions: the Snakefile imports this package while it
# plans the DAG, and a dry run should not pay for loading torch.

# How often (in steps) the loop asks the device whether every row has ended: each ask
# is a host-device sync, which stalls the launch queue.
_DONE_CHECK_EVERY = 8


def _vocab_mask(ids, vocab: int, device):
    """0 where allowed, -inf at the suppressed ids."""
    import torch

    mask = torch.zeros(vocab, device=device, dtype=torch.float32)
    ids = [i for i in (ids or []) if 0 <= i < vocab]
    if ids:
        mask[ids] = float("-inf")
    return mask


def _heads(x, n_heads: int):
    """[B, T, d] -> [B, H, T, d/H]"""
    b, t, d = x.shape
    return x.view(b, t, n_heads, d // n_heads).transpose(1, 2)


def _merge(x):
    """[B, H, T, dh] -> [B, T, H*dh]"""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class _Decoder:
    """The decoder's own layers over a preallocated self-attention cache [B, H, T_max, dh]
    and cross-attention keys/values computed once from the encoder states. The arithmetic
    follows transformers' WhisperAttention (query scaled before the product, sdpa with
    scale 1); slots past the current position are masked out."""

    def __init__(self, model, states, max_len: int):
        import torch

        self.decoder = model.get_decoder()
        self.proj_out = model.proj_out
        self.n_heads = model.config.decoder_attention_heads
        self.activation = self.decoder.layers[0].activation_fn
        b, n_source, _ = states.shape
        dh = model.config.d_model // self.n_heads
        kw = {"device": states.device, "dtype": states.dtype}
        self.keys = [torch.zeros((b, self.n_heads, max_len, dh), **kw) for _ in self.decoder.layers]
        self.values = [torch.zeros((b, self.n_heads, max_len, dh), **kw) for _ in self.decoder.layers]
        self.slots = torch.arange(max_len, device=states.device)
        cross = (b, self.n_heads, n_source, dh)
        self.cross = [(torch.zeros(cross, **kw), torch.zeros(cross, **kw)) for _ in self.decoder.layers]

    def load(self, states) -> None:
        """Cross-attention keys/values of new encoder states, into the same buffers (a
        captured graph reads them there)."""
        import torch

        with torch.no_grad():
            for layer, (ck, cv) in zip(self.decoder.layers, self.cross):
                ck.copy_(_heads(layer.encoder_attn.k_proj(states), self.n_heads))
                cv.copy_(_heads(layer.encoder_attn.v_proj(states), self.n_heads))

    def logits(self, ids, positions):
        """ids [B, L] at positions [L] -> float32 logits of the last position [B, vocab];
        writes the L new keys/values into the cache first."""
        from torch.nn.functional import scaled_dot_product_attention as sdpa

        dec = self.decoder
        x = dec.embed_tokens(ids) + dec.embed_positions.weight[positions]
        visible = self.slots[None, :] <= positions[:, None]  # [L, T_max], causal
        for layer, keys, values, (ck, cv) in zip(dec.layers, self.keys, self.values, self.cross):
            attn = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            q = _heads(attn.q_proj(h) * attn.scaling, self.n_heads)
            keys.index_copy_(2, positions, _heads(attn.k_proj(h), self.n_heads))
            values.index_copy_(2, positions, _heads(attn.v_proj(h), self.n_heads))
            a = sdpa(q, keys, values, attn_mask=visible, scale=1.0)
            x = x + attn.out_proj(_merge(a))
            cross = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(x)
            q = _heads(cross.q_proj(h) * cross.scaling, self.n_heads)
            x = x + cross.out_proj(_merge(sdpa(q, ck, cv, scale=1.0)))
            x = x + layer.fc2(self.activation(layer.fc1(layer.final_layer_norm(x))))
        return self.proj_out(dec.layer_norm(x[:, -1])).float()


class Greedy:
    """greedy() for batch after batch, each row with its own prompt (all of one length:
    rows of other languages and tasks share a batch). The cache buffers and the captured
    step of the last batch shape are kept and reused by the next batch of that shape (a
    capture costs a few eager steps, and the buffers are ~4.6 GB at batch 64 in fp16 for
    whisper-small, so only one shape is kept)."""

    def __init__(self, model, max_new_tokens: int, graphs: bool | None = None):
        self.model, self.max_new_tokens, self.graphs = model, max_new_tokens, graphs
        self._kept = None  # (shape key, _Run)

    def __call__(self, states, prompts: list[list[int]]) -> list[list[int]]:
        import torch

        model = self.model
        n_prompt = len(prompts[0])
        if len(prompts) != states.shape[0] or any(len(p) != n_prompt for p in prompts):
            raise ValueError(f"{states.shape[0]} rows need as many prompts of one length, got {len(prompts)}")
        # Positions past max_target_positions have no embedding.
        steps = max(0, min(self.max_new_tokens, model.config.max_target_positions - n_prompt))
        if steps == 0:
            return [[] for _ in range(states.shape[0])]
        device = states.device
        # Work on the states' device even where it is not the current one (cuda:1); the
        # graph's own streams are made on it in _capture.
        on_device = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
        key = (tuple(states.shape), str(device), n_prompt, steps)
        with torch.no_grad(), on_device:
            states = states.to(model.dtype)
            if self._kept is None or self._kept[0] != key:
                self._kept = None  # free the old buffers before allocating the new
                graphs = device.type == "cuda" if self.graphs is None else self.graphs
                self._kept = (key, _Run(model, states, n_prompt, steps, graphs))
            return self._kept[1](states, prompts)


class _Run:
    """Static buffers for one batch shape, and the captured step where graphs are on."""

    def __init__(self, model, states, n_prompt: int, steps: int, graphs: bool):
        import torch

        gen = model.generation_config
        eot = gen.eos_token_id
        self.eot = eot[0] if isinstance(eot, list) else eot
        self.n_prompt, self.steps = n_prompt, steps
        batch, device = states.shape[0], states.device
        vocab = model.config.vocab_size
        self.suppress = _vocab_mask(gen.suppress_tokens, vocab, device)
        self.at_begin = self.suppress + _vocab_mask(gen.begin_suppress_tokens, vocab, device)
        self.dec = _Decoder(model, states, n_prompt + steps)
        self.out = torch.full((batch, steps), self.eot, dtype=torch.long, device=device)
        self.done = torch.zeros(batch, dtype=torch.bool, device=device)
        self.token = torch.full((batch, 1), self.eot, dtype=torch.long, device=device)
        self.position = torch.full((1,), n_prompt, dtype=torch.long, device=device)
        self.graph = _capture(self._advance, self.position, n_prompt) if graphs and steps > 1 else None

    def _pick(self, logits, mask, column) -> None:
        nxt = (logits + mask).argmax(-1).masked_fill(self.done, self.eot)
        self.out.index_copy_(1, column, nxt[:, None])
        self.done.logical_or_(nxt == self.eot)
        self.token.copy_(nxt[:, None])

    def _advance(self) -> None:  # one token for every row, all on the device
        self._pick(self.dec.logits(self.token, self.position), self.suppress, self.position - (self.n_prompt - 1))
        self.position.add_(1)

    def __call__(self, states, prompts: list[list[int]]) -> list[list[int]]:
        import torch

        device = states.device
        self.dec.load(states)
        self.out.fill_(self.eot)
        self.done.zero_()
        prompt = torch.tensor(prompts, dtype=torch.long, device=device)
        n = self.n_prompt
        self._pick(self.dec.logits(prompt, torch.arange(n, device=device)), self.at_begin, self.position.new_zeros(1))
        self.position.fill_(n)
        for step in range(1, self.steps):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._advance()
            if step % _DONE_CHECK_EVERY == 0 and bool(self.done.all()):
                break
        return self.out.cpu().tolist()


def _capture(advance, position, start: int):
    """A CUDA graph of one decode step. Warm-up and capture write only the cache slot at
    `start`, which the first real step writes again before any step reads it."""
    import torch

    # Streams on the tensors' device; torch.cuda.graph's default capture stream is made
    # once, on whichever device came first, so it is passed explicitly.
    device = position.device
    stream = torch.cuda.Stream(device=device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):  # warm-up off the default stream, as capture wants
        for _ in range(2):
            position.fill_(start)
            advance()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    position.fill_(start)
    # thread_local: the calibration's writer thread copies the previous batch's states
    # to the host meanwhile, which the default (global) mode would refuse.
    with torch.cuda.graph(graph, stream=torch.cuda.Stream(device=device), capture_error_mode="thread_local"):
        advance()
    return graph
