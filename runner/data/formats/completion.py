"""``format: completion``: TRL's prompt-completion rows; the completion is learned, the prompt is not."""

from loracfg.runner.data.formats._base import BadRow, Example, column, string

NAME = "completion"
CHAT = True


def convert(row: dict, data: dict) -> Example:
    prompt = string(column(row, data["prompt_field"], "prompt_field"), "the prompt")
    completion = string(column(row, data["completion_field"], "completion_field"), "the completion")
    if not completion.strip():
        raise BadRow("the completion is empty: there is nothing to learn")
    return Example(turns=[("user", prompt), ("assistant", completion)])
