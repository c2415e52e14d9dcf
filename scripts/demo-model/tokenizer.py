# The demo model's tokenizer: byte-level BPE trained with `tokenizers` on generated chats, with Qwen2's
# pre-tokenizer (single digits, so numbers are read digit by digit; GGUF tokenizer.ggml.pre = "qwen2"), and the
# HF files that ship it: tokenizer.json, tokenizer_config.json (with the chat template), generation_config.json.
import json
import random

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from data import EOT, IM_END, SPECIAL_TOKENS, TRAIN_SEED, train_example

# llama.cpp's regex for tokenizer.ggml.pre "qwen2" (Qwen2's tokenizer.json spells the contractions with (?i:...)).
QWEN2_PATTERN = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus(n: int):
    """Every text the template puts between special tokens, from n training chats (its own seed)."""
    r = random.Random(TRAIN_SEED + 7)
    for _ in range(n):
        system, qa = train_example(r)
        if system:
            yield 'system\n' + system
        for q, a in qa:
            yield 'user\n' + q
            yield 'assistant\n' + a
            yield '\n'


def build_tokenizer(n_convs: int, vocab: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(n_convs), trainer=trainer)
    return tok


def tokenizer_files(tok: Tokenizer, chat_template: str, special: dict) -> dict:
    added = {str(special[t]): {'content': t, 'lstrip': False, 'normalized': False, 'rstrip': False, 'single_word': False,
                               'special': True} for t in SPECIAL_TOKENS}
    config = {
        'add_bos_token': False, 'add_eos_token': False, 'added_tokens_decoder': added, 'bos_token': None,
        'chat_template': chat_template, 'clean_up_tokenization_spaces': False, 'eos_token': IM_END, 'errors': 'replace',
        'model_max_length': 1024, 'pad_token': EOT, 'split_special_tokens': False, 'tokenizer_class': 'PreTrainedTokenizerFast',
    }
    generation = {'bos_token_id': special[EOT], 'eos_token_id': [special[IM_END], special[EOT]], 'pad_token_id': special[EOT],
                  'do_sample': False}
    return {
        'tokenizer.json': tok.to_str(pretty=True),
        'tokenizer_config.json': json.dumps(config, indent=2),
        'generation_config.json': json.dumps(generation, indent=2),
    }
