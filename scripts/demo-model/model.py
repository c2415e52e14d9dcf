# A compact Llama for training: the same function as transformers' LlamaForCausalLM (RMSNorm, rotate-half RoPE,
# grouped-query attention, SiLU-gated MLP, tied embeddings) with fused q/k/v and gate/up projections, so each step
# launches fewer kernels. hf_state_dict() splits the fused weights into Hugging Face's tensor names.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads, self.hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        h, eps = c.hidden_size, c.rms_norm_eps
        self.eps = eps
        self.attn_norm = nn.Parameter(torch.ones(h))
        self.qkv = nn.Linear(h, (self.heads + 2 * self.kv_heads) * self.hd, bias=False)
        self.o = nn.Linear(self.heads * self.hd, h, bias=False)
        self.mlp_norm = nn.Parameter(torch.ones(h))
        self.gate_up = nn.Linear(h, 2 * c.intermediate_size, bias=False)
        self.down = nn.Linear(c.intermediate_size, h, bias=False)

    def forward(self, x, cos, sin):
        B, L, _ = x.shape
        q, k, v = self.qkv(F.rms_norm(x, x.shape[-1:], self.attn_norm, self.eps)).split(
            [self.heads * self.hd, self.kv_heads * self.hd, self.kv_heads * self.hd], -1)
        q = q.view(B, L, self.heads, self.hd).transpose(1, 2)
        k = k.view(B, L, self.kv_heads, self.hd).transpose(1, 2)
        v = v.view(B, L, self.kv_heads, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(B, L, -1))
        g, u = self.gate_up(F.rms_norm(x, x.shape[-1:], self.mlp_norm, self.eps)).chunk(2, -1)
        return x + self.down(F.silu(g) * u)


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


class TinyLlama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.embed = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))
        self.norm = nn.Parameter(torch.ones(c.hidden_size))
        theta = c.rope_parameters['rope_theta'] if getattr(c, 'rope_parameters', None) else c.rope_theta
        inv = 1.0 / (theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.int64).float() / c.head_dim))
        self.register_buffer('inv_freq', inv, persistent=False)
        for m in self.modules():  # transformers' Llama initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=c.initializer_range)

    def forward(self, ids):
        L = ids.shape[1]
        freqs = torch.arange(L, device=ids.device, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        x = F.rms_norm(x, x.shape[-1:], self.norm, self.config.rms_norm_eps)
        return x @ self.embed.weight.t().to(x.dtype)

    def hf_state_dict(self):
        """Tensors under transformers' LlamaForCausalLM names (lm_head tied to the embedding)."""
        c, sd = self.config, {}
        nq, nkv = c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim
        sd['model.embed_tokens.weight'] = self.embed.weight
        sd['lm_head.weight'] = self.embed.weight
        sd['model.norm.weight'] = self.norm
        for i, l in enumerate(self.layers):
            p = f'model.layers.{i}.'
            q, k, v = l.qkv.weight.split([nq, nkv, nkv], 0)
            g, u = l.gate_up.weight.chunk(2, 0)
            sd.update({p + 'input_layernorm.weight': l.attn_norm, p + 'self_attn.q_proj.weight': q, p + 'self_attn.k_proj.weight': k,
                       p + 'self_attn.v_proj.weight': v, p + 'self_attn.o_proj.weight': l.o.weight,
                       p + 'post_attention_layernorm.weight': l.mlp_norm, p + 'mlp.gate_proj.weight': g, p + 'mlp.up_proj.weight': u,
                       p + 'mlp.down_proj.weight': l.down.weight})
        return {k: v.detach().clone() for k, v in sd.items()}
