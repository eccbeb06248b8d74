"""`tiny-random`: a few-million-parameter Llama with random weights and a character tokenizer.

Built in memory from a config (no files, no network), deterministic in the seed, and small enough
that a whole GRPO step runs in well under a second on two CPU threads: it exists so that tests,
CI and quick experiments exercise the real training code end to end.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

# Non-ASCII names, so that no ASCII text (a prompt that mentions "<eos>", say) can spell one.
PAD, EOS, UNK = "⟨pad⟩", "⟨eos⟩", "⟨unk⟩"
# Printable ASCII already contains " \t\n\r\x0b\x0c"; every one of them is its own token.
CHARACTERS = string.printable

# Sized so one GRPO step (8 prompts x 8 completions x 12 new tokens) stays well under a second
# on two threads; ~2.7M parameters.
TINY_HIDDEN = 256
TINY_LAYERS = 4
TINY_HEADS = 4
TINY_INTERMEDIATE = 512
TINY_MAX_POSITIONS = 4096


def char_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer with one token per character: printable ASCII plus pad, eos and unk tokens.

    decode(encode(text)) == text for any printable-ASCII text: the Fuse decoder joins tokens
    without the spaces a word-level decoder would insert.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for ch in CHARACTERS:
        vocab[ch] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # [\s\S] rather than "." so that newlines are pieces too: every character is its own piece.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return tokenizer


@contextlib.contextmanager
def isolated_seed(seed: int) -> Iterator[None]:
    """Seed torch for the block, then restore every RNG (CPU and CUDA) to where it was."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def tiny_llama(vocab_size: int, pad_token_id: int, eos_token_id: int, seed: int) -> PreTrainedModel:
    """A randomly initialised Llama whose weights depend only on `seed`.

    The global torch RNG is left untouched (forked), so building a model never changes the
    sampling stream the trainer checkpoints.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        intermediate_size=TINY_INTERMEDIATE,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        num_key_value_heads=TINY_HEADS,
        max_position_embeddings=TINY_MAX_POSITIONS,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=None,
    )
    with isolated_seed(seed):
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = pad_token_id
    model.generation_config.eos_token_id = eos_token_id
    return model
