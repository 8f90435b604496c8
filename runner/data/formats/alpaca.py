"""``format: alpaca``: instruction, optional input, output; the output is learned."""

from loracfg.runner.data.formats._base import BadRow, Example, column, string

NAME = "alpaca"
CHAT = True


def convert(row: dict, data: dict) -> Example:
    instruction = string(column(row, data["instruction_field"], "instruction_field"), "the instruction")
    extra = row.get(data["input_field"])
    if extra is not None and not isinstance(extra, str):
        raise BadRow(f"the input is {type(extra).__name__}, not a string")
    output = string(column(row, data["output_field"], "output_field"), "the output")
    if not output.strip():
        raise BadRow("the output is empty: there is nothing to learn")
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    return Example(turns=[("user", prompt), ("assistant", output)])
