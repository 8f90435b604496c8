"""``format: classification``: a text column and an integer class label (seq-cls models)."""

from loracfg.runner.data.formats._base import BadRow, Example, column, string

NAME = "classification"
CHAT = False


def convert(row: dict, data: dict) -> Example:
    text = string(column(row, data["dataset_text_field"], "dataset_text_field"), "the text")
    label = column(row, data["label_field"], "label_field")
    try:
        return Example(text=text, label=int(label))
    except (TypeError, ValueError) as e:
        raise BadRow(f"the label {label!r} is not a class number") from e
