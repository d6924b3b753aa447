"""Examples to token ids and labels: chat templates, loss only on assistant/completion tokens.

Runs in the ML runtime (needs a tokenizer). The rendered text keeps character spans of what
carries loss; the tokenizer's offsets map them to tokens, so labels are exact whatever the
template looks like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .datasets import Example

IGNORE_INDEX = -100

NAMED_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
        " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
        "{% endif %}"
    ),
    "mistral": (
        "{{ bos_token }}{% for message in messages %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
        "{% else %}{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}"
    ),
    "gemma": (
        "{{ bos_token }}{% for message in messages %}"
        "{% set role = 'model' if message['role'] == 'assistant' else 'user' %}"
        "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
    ),
    "phi3": (
        "{% for message in messages %}"
        "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    ),
    "alpaca": (
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'assistant' %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
    ),
}


@dataclass
class Tokenized:
    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    truncated: int = 0
    dropped: int = 0
    truncated_lines: list[int] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        lengths = sorted(len(x) for x in self.input_ids)
        trainable = sum(sum(1 for t in lab if t != IGNORE_INDEX) for lab in self.labels)
        if not lengths:
            return {"examples": 0, "truncated": self.truncated, "dropped": self.dropped}
        return {
            "examples": len(lengths),
            "tokens": sum(lengths),
            "trainableTokens": trainable,
            "minTokens": lengths[0],
            "meanTokens": round(sum(lengths) / len(lengths), 1),
            "p95Tokens": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
            "maxTokens": lengths[-1],
            "truncated": self.truncated,
            "dropped": self.dropped,
        }


def resolve_template(tokenizer: Any, name: str | None) -> tuple[str, str]:
    """(template, source): a named one, else the model's own, else ChatML."""
    if name:
        if name in NAMED_TEMPLATES:
            return NAMED_TEMPLATES[name], name
        if "{%" in name or "{{" in name:
            return name, "inline"
        raise ValueError(
            f"dataset.chatTemplate: unknown template {name!r} "
            f"(known: {', '.join(sorted(NAMED_TEMPLATES))})"
        )
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and own:
        return own, "model"
    return NAMED_TEMPLATES["chatml"], "chatml (the model has no chat template)"


def render(example: Example, tokenizer: Any, template: str) -> tuple[str, list[tuple[int, int]]]:
    """The example's text and the character spans that carry loss."""
    if not example.is_chat:
        text, spans, pos = "", [], 0
        for seg in example.segments:
            text += seg.text
            if seg.train:
                spans.append((pos, len(text)))
            pos = len(text)
        eos = tokenizer.eos_token or ""
        spans_end = len(text)
        text += eos
        if spans and spans[-1][1] == spans_end:  # the model learns to stop
            spans[-1] = (spans[-1][0], len(text))
        return text, spans
    msgs = [{"role": m.role, "content": m.content} for m in example.messages]

    def apply(items: list[dict[str, str]], gen: bool) -> str:
        out = tokenizer.apply_chat_template(
            items, tokenize=False, add_generation_prompt=gen, chat_template=template
        )
        return str(out)

    full = apply(msgs, False)
    spans = []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        prefix = apply(msgs[:i], True) if i else ""
        upto = apply(msgs[: i + 1], False)
        if full.startswith(upto) and upto.startswith(prefix):
            spans.append((len(prefix), len(upto)))
        else:  # a template that rewrites history: fall back to the content itself
            at = full.find(m["content"], spans[-1][1] if spans else 0)
            if at >= 0:
                spans.append((at, at + len(m["content"])))
    return full, spans


def tokenize_examples(
    examples: list[Example],
    tokenizer: Any,
    max_seq_length: int,
    template: str,
    completion_only: bool = True,
) -> Tokenized:
    """Token ids + labels per example; over-long ones are truncated (and counted)."""
    out = Tokenized()
    bos = tokenizer.bos_token_id
    for ex in examples:
        text, spans = render(ex, tokenizer, template)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids: list[int] = list(enc["input_ids"])
        offsets: list[tuple[int, int]] = list(enc["offset_mapping"])
        prepended = not ex.is_chat and bos is not None and (not ids or ids[0] != bos)
        if prepended:
            ids, offsets = [bos, *ids], [(0, 0), *offsets]
        labels = [
            tok
            if not completion_only or any(s <= start < e or start < s < end for s, e in spans)
            else IGNORE_INDEX
            for tok, (start, end) in zip(ids, offsets, strict=True)
        ]
        if prepended:
            labels[0] = IGNORE_INDEX  # never predicted; keeps decoded labels clean
        if len(ids) > max_seq_length:
            out.truncated += 1
            if len(out.truncated_lines) < 20:
                out.truncated_lines.append(ex.line)
            ids, labels = ids[:max_seq_length], labels[:max_seq_length]
        # the first token is never predicted, so it needs two+ tokens with a label past position 0
        if len(ids) < 2 or all(t == IGNORE_INDEX for t in labels[1:]):
            out.dropped += 1
            continue
        out.input_ids.append(ids)
        out.labels.append(labels)
        out.lines.append(ex.line)
    return out
