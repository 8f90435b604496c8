"""``format: text``: one text column, learned whole (continued pre-training)."""

from loracfg.runner.data.formats._base import Example, column, string

NAME = "text"
CHAT = False


def convert(row: dict, data: dict) -> Example:
    return Example(text=string(column(row, data["dataset_text_field"], "dataset_text_field"), "the text"))
