# Trains the demo model end to end: generates chats, trains the byte-level BPE tokenizer, trains a Llama-architecture
# model on assistant tokens only, exports a Hugging Face directory (fp16 safetensors + tokenizer + chat template), and
# answers the held-out questions greedily with the exported weights. Usage: see README.md beside this file.
import argparse
import json
import math
import os
import random
import shutil
import sys
import tarfile
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F

from data import CHAT_TEMPLATE, EOT, IM_END, SPECIAL_TOKENS, TRAIN_SEED, pieces, render_prompt, train_example
from model import TinyLlama
from tokenizer import build_tokenizer, tokenizer_files

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(f'[{time.strftime("%H:%M:%S")}]', *a, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Data: each worker draws its chunk of chats from its own seed and tokenizes it.

_tok = None


def _init_worker(tok_json):
    global _tok
    from tokenizers import Tokenizer
    _tok = Tokenizer.from_str(tok_json)


def _chunk(args):
    chunk_id, count, max_len = args
    r = random.Random(TRAIN_SEED * 100_003 + chunk_id)
    ids, mask, lens = [], [], []
    dropped = 0
    for _ in range(count):
        parts = pieces(*train_example(r))
        encs = _tok.encode_batch([t for t, _ in parts], add_special_tokens=False)
        seq, m = [], []
        for (_, trained), e in zip(parts, encs):
            seq.extend(e.ids)
            m.extend([trained] * len(e.ids))
        if len(seq) > max_len:
            dropped += 1
            continue
        ids.extend(seq)
        mask.extend(m)
        lens.append(len(seq))
    return np.array(ids, np.int16), np.array(mask, np.bool_), np.array(lens, np.int32), dropped


def build_dataset(tok, n, max_len, workers):
    chunks = 256
    per = [n // chunks + (1 if i < n % chunks else 0) for i in range(chunks)]
    with Pool(workers, initializer=_init_worker, initargs=(tok.to_str(),)) as pool:
        parts = pool.map(_chunk, [(i, per[i], max_len) for i in range(chunks)])
    lens = np.concatenate([p[2] for p in parts])
    ids = np.zeros((len(lens), max_len), np.int16)
    mask = np.zeros((len(lens), max_len), np.bool_)
    pos = np.arange(max_len)
    row = 0
    for flat_ids, flat_mask, plens, _ in parts:  # scatter each chunk's flat tokens into padded rows
        valid = pos[None, :] < plens[:, None]
        ids[row:row + len(plens)][valid] = flat_ids
        mask[row:row + len(plens)][valid] = flat_mask
        row += len(plens)
    return ids, mask, lens, sum(p[3] for p in parts)


def check_piecewise(tok, count=2000):
    """Token ids of the pieces concatenated equal the ids of the whole text, and of the prompt alone (what the
    server encodes) as its prefix: so training sees exactly the tokens inference sees."""
    r = random.Random(99)
    for _ in range(count):
        system, qa = train_example(r)
        parts = pieces(system, qa)
        whole = tok.encode(''.join(t for t, _ in parts), add_special_tokens=False).ids
        joined = [i for t, _ in parts for i in tok.encode(t, add_special_tokens=False).ids]
        assert whole == joined, (parts, whole, joined)
        msgs = ([{'role': 'system', 'content': system}] if system else []) + [{'role': 'user', 'content': qa[0][0]}]
        prompt = tok.encode(render_prompt(msgs), add_special_tokens=False).ids
        assert whole[:len(prompt)] == prompt and len(prompt) == len(tok.encode(parts[0][0], add_special_tokens=False).ids)


def batches(lens, batch, seed, epoch):
    """Shuffled batches of similar lengths (sorted within windows of 64 batches), so padding stays small."""
    g = np.random.default_rng(seed * 1000 + epoch)
    order = g.permutation(len(lens))
    window = batch * 64
    out = []
    for s in range(0, len(order), window):
        w = order[s:s + window]
        w = w[np.argsort(lens[w], kind='stable')]
        out.extend(w[i:i + batch] for i in range(0, len(w) - batch + 1, batch))
    g.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Model

def make_config(args, vocab, special):
    from transformers import LlamaConfig
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=args.hidden, intermediate_size=args.ffn, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, head_dim=args.hidden // args.heads,
        max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        hidden_act='silu', attention_bias=False, mlp_bias=False, initializer_range=0.02,
        bos_token_id=special[EOT], eos_token_id=special[IM_END], pad_token_id=special[EOT],
    )
    cfg._attn_implementation = 'sdpa'
    return cfg


def to_hf(model, cfg, dev, sample):
    """transformers' LlamaForCausalLM holding the trained weights; checks that it computes what was trained."""
    from transformers import LlamaForCausalLM
    hf = LlamaForCausalLM(cfg).to(dev)
    hf.load_state_dict(model.hf_state_dict())
    hf.eval()
    model.eval()
    with torch.no_grad():
        a, b = model(sample).float(), hf(input_ids=sample).logits.float()
    diff = (a - b).abs().max().item()
    log(f'transformers LlamaForCausalLM vs the training model: max |logit diff| {diff:.2e} over {tuple(sample.shape)} tokens')
    assert diff < 1e-2, diff
    return hf


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


def train(model, ids, mask, lens, args, dev, probe=None):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and 'embed' not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and 'embed' not in n)]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': rest, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8, fused=dev.type == 'cuda')
    ids_d = torch.from_numpy(ids).to(dev)
    mask_d = torch.from_numpy(mask).to(dev)
    lens_np = lens
    total = args.steps
    step, epoch, t0 = 0, 0, time.time()
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda')
    model.train()
    sched = iter(())
    timed_from = None
    while step < total:
        b = next(sched, None)
        if b is None:
            sched = iter(batches(lens_np, args.batch, args.seed, epoch))
            epoch += 1
            continue
        L = int(lens_np[b].max())
        idx = torch.from_numpy(b).to(dev)
        x = ids_d[idx, :L].long()
        m = mask_d[idx, 1:L]
        for g in opt.param_groups:
            g['lr'] = lr_at(step, total, args.lr, args.warmup)
        with autocast:
            logits = model(x[:, :-1])
        loss_tok = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction='none')
        loss = (loss_tok * m.reshape(-1)).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step == 200:  # time from here: the first steps include the allocator's and kernels' warm-up
            if dev.type == 'cuda':
                torch.cuda.synchronize()
            timed_from = (time.time(), step)
        if step % 100 == 0 or step == total:
            loss_val = loss.item()
            el = time.time() - t0
            rate = ''
            if timed_from and step > timed_from[1]:
                per = (time.time() - timed_from[0]) / (step - timed_from[1])
                t_base = timed_from[0] - t0 - timed_from[1] * per  # the warm-up's excess over steady steps
                rate = f' {per * 1000:.1f} ms/step'
                # Keep inside the time budget: fewer steps (the schedule follows) rather than overrunning.
                if args.cut_to and step == 400:
                    total = args.cut_to
                    log(f'steps cut to {total} (--cut-to)')
                elif args.time_budget and step == 400 and t_base + per * total > args.time_budget:
                    total = min(total, max(step + 100, int((args.time_budget - t_base) / per)))
                    log(f'steps reduced to {total} to fit {args.time_budget} s (repeat with --steps {args.steps} --cut-to {total})')
            log(f'step {step}/{total} epoch {epoch} loss {loss_val:.4f} lr {opt.param_groups[0]["lr"]:.2e} {el:.0f} s{rate}')
        if probe and step == total // 2:
            probe()
            model.train()
    return total, time.time() - t0


# ---------------------------------------------------------------------------------------------------------------
# Greedy answers with the exported (fp16-rounded) weights, in float32: what our engine computes.

@torch.no_grad()
def greedy_answers(logits_fn, tok, questions, dev, eos_ids, max_new=48, batch=256):
    enc = [tok.encode(render_prompt([{'role': 'user', 'content': q}]), add_special_tokens=False).ids for q in questions]
    by_len = {}
    for i, e in enumerate(enc):
        by_len.setdefault(len(e), []).append(i)
    out = [None] * len(questions)
    for L, idxs in sorted(by_len.items()):
        for s in range(0, len(idxs), batch):
            part = idxs[s:s + batch]
            x = torch.tensor([enc[i] for i in part], device=dev)
            done = torch.zeros(len(part), dtype=torch.bool, device=dev)
            gen = []
            for _ in range(max_new):
                nxt = logits_fn(x)[:, -1].float().argmax(-1)
                gen.append(nxt)
                done |= torch.isin(nxt, eos_ids)
                x = torch.cat([x, nxt[:, None]], 1)
                if bool(done.all()):
                    break
            g = torch.stack(gen, 1).tolist()
            for j, i in enumerate(part):
                toks = []
                for t in g[j]:
                    if t in eos_ids.tolist():
                        break
                    toks.append(t)
                out[i] = tok.decode(toks, skip_special_tokens=False)
    return out


def accuracy(items, answers):
    per = {}
    for it, a in zip(items, answers):
        c = per.setdefault(it['task'], [0, 0])
        c[0] += a == it['answer']
        c[1] += 1
    per['ALL'] = [sum(v[0] for v in per.values()), sum(v[1] for v in per.values())]
    return {k: {'correct': v[0], 'total': v[1], 'accuracy': v[0] / v[1]} for k, v in per.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--convs', type=int, default=6_000_000)
    ap.add_argument('--tok-convs', type=int, default=100_000)
    ap.add_argument('--vocab', type=int, default=1024)
    ap.add_argument('--max-len', type=int, default=192)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--ffn', type=int, default=768)
    ap.add_argument('--layers', type=int, default=8)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--kv-heads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=7000)
    ap.add_argument('--batch', type=int, default=2048)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--warmup', type=int, default=300)
    ap.add_argument('--seed', type=int, default=TRAIN_SEED)
    ap.add_argument('--time-budget', type=float, default=0, help='seconds of training; fewer steps if the first ones show it would overrun')
    ap.add_argument('--cut-to', type=int, default=0, help='at step 400, shorten the schedule to this many steps (what --time-budget did)')
    ap.add_argument('--workers', type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument('--eval-limit', type=int, default=0)
    ap.add_argument('--tar-only', action='store_true', help='keep only model.tar of the exported directory')
    args = ap.parse_args()
    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    log('device', dev, torch.cuda.get_device_name(0) if dev.type == 'cuda' else '', 'torch', torch.__version__, 'args', vars(args))
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    tok = build_tokenizer(args.tok_convs, args.vocab)
    special = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    check_piecewise(tok)
    log(f'tokenizer: {tok.get_vocab_size()} tokens, specials {special}; piecewise encoding checked')

    ids, mask, lens, dropped = build_dataset(tok, args.convs, args.max_len, args.workers)
    log(f'data: {len(lens)} chats ({dropped} over {args.max_len} tokens dropped), mean {lens.mean():.1f} tokens, '
        f'{int(mask.sum())} trained tokens, {time.time() - t_start:.0f} s so far')

    cfg = make_config(args, tok.get_vocab_size(), special)
    model = TinyLlama(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f'model: {n_params} parameters')
    items = [json.loads(l) for l in open(os.path.join(HERE, 'heldout.jsonl'))]
    eos = torch.tensor([special[IM_END], special[EOT]], device=dev)

    def probe():
        sample = items[::6]
        model.eval()
        acc = accuracy(sample, greedy_answers(model, tok, [it['question'] for it in sample], dev, eos))
        log('half-way held-out accuracy: ' + ', '.join(f'{k} {100 * v["accuracy"]:.0f}%' for k, v in acc.items()))

    steps, train_s = train(model, ids, mask, lens, args, dev, probe)
    log(f'trained {steps} steps in {train_s:.0f} s')

    # Export: fp16 weights (what the GGUF holds, bit for bit), tokenizer files, chat template.
    sample = torch.from_numpy(ids[:64, :int(lens[:64].max())]).long().to(dev)
    hf = to_hf(model, cfg, dev, sample)
    mdir = os.path.join(args.out, 'model')
    hf.half().save_pretrained(mdir, safe_serialization=True)
    for name, content in tokenizer_files(tok, CHAT_TEMPLATE, special).items():
        with open(os.path.join(mdir, name), 'w') as f:
            f.write(content)
    with open(os.path.join(mdir, 'config.json')) as f:
        log('config.json', f.read())

    # The shipped model answers: fp16-rounded weights computed in float32, as our engine computes them.
    hf.float()
    if dev.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.eval_limit:
        items = items[:args.eval_limit]
    t_eval = time.time()
    answers = greedy_answers(lambda x: hf(input_ids=x).logits, tok, [it['question'] for it in items], dev, eos)
    acc = accuracy(items, answers)
    with open(os.path.join(args.out, 'gpu-answers.jsonl'), 'w') as f:
        for it, a in zip(items, answers):
            f.write(json.dumps({**it, 'model': a}) + '\n')
    summary = {'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu', 'torch': torch.__version__,
               'params': n_params, 'steps': steps, 'train_seconds': round(train_s, 1), 'total_seconds': round(time.time() - t_start, 1),
               'chats': int(len(lens)), 'args': vars(args), 'heldout': acc}
    with open(os.path.join(args.out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    for k, v in acc.items():
        log(f'held-out {k:14s} {v["correct"]:5d}/{v["total"]:5d} = {100 * v["accuracy"]:.1f}%')
    log(f'eval {time.time() - t_eval:.0f} s; total {time.time() - t_start:.0f} s')
    with tarfile.open(os.path.join(args.out, 'model.tar'), 'w') as t:
        t.add(mdir, arcname='model')
    if args.tar_only:
        shutil.rmtree(mdir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
