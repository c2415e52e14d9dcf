# Conversations for the demo model: training chats (held-out instances excluded) in the Qwen-style chat format,
# the held-out evaluation set, and token ids with a mask that marks what the assistant says (the loss is on those).
import json
import random
import sys

from tasks import GENERATORS, SYSTEM_PROMPTS, TRAIN_WEIGHTS, held_out

IM_START, IM_END, EOT = '<|im_start|>', '<|im_end|>', '<|endoftext|>'
SPECIAL_TOKENS = [EOT, IM_START, IM_END]
# The template the model is trained on, as tokenizer_config.json and the GGUF carry it (rendered by Jinja).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TRAIN_SEED = 1234
EVAL_SEED = 20261127
# Per-task question counts of the held-out evaluation (1,820 in all; div, convert and mul have
# only about 50, 100 and 120 held-out instances). add2/sub2: both operands two-digit.
EVAL_COUNTS = {'add2': 300, 'sub2': 300, 'add': 100, 'sub': 100, 'mul': 100, 'div': 40, 'count_letters': 150,
               'count_words': 100, 'reverse': 150, 'sort': 150, 'compare': 150, 'convert': 80, 'unknown': 100}
EVAL_SOURCE = {'add2': 'add', 'sub2': 'sub'}


def turn(role: str, content: str) -> str:
    return f'{IM_START}{role}\n{content}{IM_END}\n'


def render_prompt(messages) -> str:
    """What the chat template renders with add_generation_prompt: the text the server tokenizes."""
    return ''.join(turn(m['role'], m['content']) for m in messages) + f'{IM_START}assistant\n'


def train_example(r: random.Random):
    """One training conversation: an optional system prompt, then one to three question/answer turns."""
    names, weights = list(TRAIN_WEIGHTS), list(TRAIN_WEIGHTS.values())
    system = r.choice(SYSTEM_PROMPTS) if r.random() < 0.3 else None
    turns = 1 if r.random() < 0.8 else r.choice([2, 3])
    qa = []
    while len(qa) < turns:
        task = r.choices(names, weights)[0]
        _, q, a, key = GENERATORS[task](r)
        if task != 'greeting' and held_out(key):
            continue
        qa.append((q, a))
    return system, qa


def pieces(system, qa):
    """The conversation as (text, trained) pieces whose token ids concatenate to the whole text's ids:
    every piece boundary falls after a special token or between '\\n' and the answer, where the
    pre-tokenizer splits anyway (checked in train.py)."""
    out = []
    prefix = turn('system', system) if system else ''
    for i, (q, a) in enumerate(qa):
        prefix += f'{IM_START}user\n{q}{IM_END}\n{IM_START}assistant\n'
        out.append((prefix, False))
        out.append((a + IM_END, True))
        prefix = '\n'
    return out


def eval_set(seed: int = EVAL_SEED, only_held_out: bool = True):
    """Held-out questions only (instances no training chat contains), distinct, in a fixed order. Without
    only_held_out: questions as a user would draw them (nine in ten instances were trained on), for comparison."""
    r = random.Random(seed)
    items, seen = [], set()
    for label, count in EVAL_COUNTS.items():
        gen = GENERATORS[EVAL_SOURCE.get(label, label)]
        got, tries = 0, 0
        while got < count:
            tries += 1
            if tries > 1_000_000:
                raise RuntimeError(f'fewer than {count} held-out {label} instances')
            task, q, a, key = gen(r)
            if task != label or (only_held_out and not held_out(key)) or key in seen:
                continue
            seen.add(key)
            items.append({'task': task, 'question': q, 'answer': a})
            got += 1
    return items


if __name__ == '__main__':
    # python3 data.py > heldout.jsonl: the held-out set that eval.ts and train.py read.
    # python3 data.py --fresh > fresh.jsonl: the same mix from another seed, trained instances included.
    fresh = '--fresh' in sys.argv
    for item in eval_set(EVAL_SEED + 1, False) if fresh else eval_set():
        print(json.dumps(item))
