"""Build a tiny Llama (byte-level BPE tokenizer with a ChatML template + random weights) locally.

Run in the ML runtime: ``python -m model_garden.demo.tiny_model OUT_DIR [--hidden 64 --layers 2]``.
The result loads with ``AutoModelForCausalLM``/``AutoTokenizer`` and serves with vLLM.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .data import alpaca_rows, corpus

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|im_start|>", "<|im_end|>", "<|unk|>"]


def build_tokenizer(out_dir: Path, vocab_size: int = 512) -> None:
    """Train a byte-level BPE on the demo corpus and save it as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    text = corpus(alpaca_rows(2000, seed=1)) + [
        "user assistant system Below is an instruction that describes a task. Response Input",
        "### Instruction: ### Input: ### Response: Write a response that appropriately completes",
        "the request. Hello, how are you? I am fine. What is the capital of France? Paris.",
    ]
    tok.train_from_iterator(text, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token="<|unk|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.model_max_length = 2048
    fast.save_pretrained(out_dir)


def build_tiny_model(
    out_dir: str | Path,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 2,
    intermediate_size: int | None = None,
    max_positions: int = 2048,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised Llama with its tokenizer to ``out_dir`` (safetensors)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out, safe_serialization=True)
    (out / "model_garden.json").write_text(
        json.dumps(
            {"builtBy": "model_garden.demo.tiny_model", "hiddenSize": hidden_size, "layers": layers}
        ),
        encoding="utf-8",
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    args = parser.parse_args(argv)
    build_tiny_model(args.out_dir, hidden_size=args.hidden, layers=args.layers, heads=args.heads)
    print(args.out_dir)


if __name__ == "__main__":
    main()
