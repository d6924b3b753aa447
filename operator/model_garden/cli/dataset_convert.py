"""Convert validated dataset rows between alpaca, chat, completion and text (pure functions).

Rows are read and validated by the trainer's own parser (:mod:`model_garden.training.datasets`);
each converted row is parsed again in the target format, so what is written trains as intended.
A row that cannot be expressed in the target format (a multi-turn conversation as alpaca, raw
text as chat) is an error naming its line; nothing is converted partly.
"""

from __future__ import annotations

from typing import Any

from model_garden.training.datasets import Example, _FieldError, parse_row


class ConvertError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


def _single_turn(example: Example, target: str) -> tuple[str, str, str]:
    """(system, user, assistant) of a one-question conversation."""
    messages = list(example.messages)
    system = messages.pop(0).content if messages and messages[0].role == "system" else ""
    roles = [m.role for m in messages]
    if roles != ["user", "assistant"]:
        raise ConvertError(
            example.line,
            f"a conversation of {len(messages)} messages ({', '.join(roles)}) cannot be "
            f"{target}: it holds one user message and one answer",
        )
    return system, messages[0].content, messages[1].content


def convert_example(example: Example, target: str) -> dict[str, Any]:
    """One row of ``target`` format from a validated example."""
    if target == "chat":
        if example.is_chat:
            return {"messages": [{"role": m.role, "content": m.content} for m in example.messages]}
        if len(example.segments) != 2 or not example.segments[0].text.strip():
            raise ConvertError(example.line, "text has no prompt and answer: cannot be chat")
        prompt, completion = example.segments
        return {
            "messages": [
                {"role": "user", "content": prompt.text},
                {"role": "assistant", "content": completion.text},
            ]
        }
    if target == "alpaca":
        if example.is_chat:
            system, user, answer = _single_turn(example, "alpaca")
            row = {"instruction": user, "input": "", "output": answer}
            return {**row, "system": system} if system else row
        if len(example.segments) != 2 or not example.segments[0].text.strip():
            raise ConvertError(example.line, "text has no prompt and answer: cannot be alpaca")
        return {
            "instruction": example.segments[0].text,
            "input": "",
            "output": example.segments[1].text,
        }
    if target == "completion":
        if example.is_chat:
            system, user, answer = _single_turn(example, "completion")
            return {"prompt": f"{system}\n\n{user}" if system else user, "completion": answer}
        if len(example.segments) == 1:
            return {"prompt": "", "completion": example.segments[0].text}
        return {"prompt": example.segments[0].text, "completion": example.segments[1].text}
    if target == "text":
        if example.is_chat:
            return {"text": "\n\n".join(m.content for m in example.messages)}
        return {"text": "".join(s.text for s in example.segments)}
    raise ValueError(f"unknown format {target!r}")


def convert(examples: list[Example], target: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, problems): every example converted and checked in ``target`` by the trainer's
    parser; problems name their lines (rows are only to be written when there is none)."""
    rows, problems = [], []
    for example in examples:
        try:
            row = convert_example(example, target)
            parse_row(row, target, example.line)
        except ConvertError as exc:
            problems.append(str(exc))
            continue
        except _FieldError as exc:
            problems.append(f"line {example.line}: as {target}: {exc.field}: {exc.message}")
            continue
        rows.append(row)
    return rows, problems
