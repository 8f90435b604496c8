"""``format: messages``: a conversation, a list of turns (OpenAI ``role``/``content``, or ShareGPT
``from``/``value`` through data.role_field, data.content_field and data.role_map); assistant turns are learned."""

from loracfg.runner.data.formats._base import ROLE_MAP, BadRow, Example, column

NAME = "messages"
CHAT = True


def convert(row: dict, data: dict) -> Example:
    turns_in = column(row, data["messages_field"], "messages_field")
    if not isinstance(turns_in, list) or not turns_in:
        raise BadRow(f"'{data['messages_field']}' is not a non-empty list of turns")
    roles = {**ROLE_MAP, **(data.get("role_map") or {})}
    turns = []
    for i, turn in enumerate(turns_in):
        if not isinstance(turn, dict):
            raise BadRow(f"turn {i} is {type(turn).__name__}, not a mapping")
        role, content = turn.get(data["role_field"]), turn.get(data["content_field"])
        if role not in roles:
            raise BadRow(f"turn {i} has role {role!r} (key '{data['role_field']}'); known roles: {', '.join(roles)}. "
                         f"Map it with data.role_map (e.g. +data.role_map.{role}=assistant)")
        if not isinstance(content, str):
            raise BadRow(f"turn {i} ({role}) has {type(content).__name__} content (key '{data['content_field']}'), "
                         f"not a string")
        if roles[role] == "assistant" and not content.strip():
            raise BadRow(f"turn {i} is an empty assistant turn")
        turns.append((roles[role], content))
    if not any(r == "assistant" for r, _ in turns):
        raise BadRow("the conversation has no assistant turn: there is nothing to learn")
    return Example(turns=turns)
