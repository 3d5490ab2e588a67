"""Files' tags, as Carbon has them: the tags a sync request carries, merged onto the files it lists.

A tag is a key and a value that is a string or a list of strings; other scalars become strings as in Carbon
("values other than `string` and `list<string>` are automatically converted to strings (e.g. 4 will become
"4")"). A later sync's tags are upserted onto a file's (Carbon's word for data source tags): its keys replace
the file's values for those keys, other keys stay; a sync without tags leaves a file's tags alone.

In the mail store a file's tags are two columns of its email row, both NULL while it has none: `tags`, the
canonical JSON object shown as `UserFile.tags`, and `tag_pairs`, one string per (key, value) (a list value
gives one per element), which a filter leaf tests with `list_has_any` without a join. Pure functions.
"""

from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

TagValue = str | list[str]
Tags = dict[str, TagValue]

MAX_TAG_DEPTH = 3  # Carbon's limit on the nesting of `tags_v2`


class TagLeaf(BaseModel):
    """A file matches when its tag `key` has one of `values` (for a list tag, one of its elements);
    `negate` inverts it, so a file without the key matches a negated leaf."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    values: tuple[str, ...]
    negate: bool = False


class TagGroup(BaseModel):
    """Leaves and groups joined by AND or OR (an empty AND holds for every file, an empty OR for none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["AND", "OR"]
    items: tuple["TagLeaf | TagGroup", ...]


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value)  # Carbon is Python: True becomes "True"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def tag_value(value: Any, where: str) -> TagValue:
    """A tag value as stored: a string or a list of strings; ValueError naming `where` otherwise."""
    if isinstance(value, list):
        items = [_scalar(item) for item in value]
        if any(item is None for item in items):
            raise ValueError(f"{where}: a list tag holds strings, numbers or booleans only")
        return items  # type: ignore[return-value]
    scalar = _scalar(value)
    if scalar is None:
        raise ValueError(f"{where}: a tag's value is a string, a number, a boolean or a list of them")
    return scalar


def normalise_tags(tags: Mapping[str, Any] | None) -> Tags:
    """Tags as stored (values converted to strings); ValueError naming the key when one cannot be."""
    if not tags:
        return {}
    if not isinstance(tags, Mapping):
        raise ValueError("tags must be an object of key to value")
    out: Tags = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise ValueError("a tag's key is a non-empty string")
        out[key] = tag_value(value, f"tag {key!r}")
    return out


def tags_json(tags: Mapping[str, TagValue]) -> str | None:
    """The canonical text of the `tags` column (keys sorted), None for no tags."""
    return orjson.dumps(tags, option=orjson.OPT_SORT_KEYS).decode() if tags else None


def pair(key: str, value: str) -> str:
    """One element of `tag_pairs`: the JSON array [key, value], so no key or value can fake another."""
    return orjson.dumps([key, value]).decode()


def tag_pairs(tags: Mapping[str, TagValue]) -> list[str] | None:
    """The `tag_pairs` column for these tags, None for no tags."""
    pairs = [pair(k, v) for k, value in tags.items() for v in ([value] if isinstance(value, str) else value)]
    return sorted(pairs) or None


def merge_tags(old: str | None, new: Mapping[str, TagValue]) -> str | None:
    """A file's `tags` column after a sync with `new`: its keys replace the old values, the rest stay."""
    merged = {**(orjson.loads(old) if old else {}), **new}
    return tags_json(merged)


def parse_tag_filter(value: Mapping[str, Any], where: str = "tags_v2", depth: int = 1) -> TagGroup:
    """Carbon's `tags_v2`: `{"AND"|"OR": [block, ...]}`, a block being another such group or
    `{"key": str, "value": any | list, "negate": bool}`, nested at most 3 deep. ValueError says where."""
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in ("AND", "OR"):
        raise ValueError(f'{where}: a group is an object with one key, "AND" or "OR", holding a list')
    op, blocks = next(iter(value.items()))
    if not isinstance(blocks, list):
        raise ValueError(f"{where}.{op}: expected a list of tag blocks")
    items: list[TagLeaf | TagGroup] = []
    for at, block in enumerate(blocks):
        here = f"{where}.{op}[{at}]"
        if isinstance(block, Mapping) and set(block) & {"AND", "OR"}:
            if depth >= MAX_TAG_DEPTH:
                raise ValueError(f"{here}: tags_v2 nests at most {MAX_TAG_DEPTH} levels")
            items.append(parse_tag_filter(block, here, depth + 1))
        else:
            items.append(_leaf(block, here))
    return TagGroup(op=op, items=tuple(items))


def _leaf(block: Any, where: str) -> TagLeaf:
    if not isinstance(block, Mapping):
        raise ValueError(f'{where}: a tag block is an object {{"key", "value", "negate"}}')
    unknown = set(block) - {"key", "value", "negate"}
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    key, negate = block.get("key"), block.get("negate", False)
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}.key: required, a non-empty string")
    if "value" not in block:
        raise ValueError(f"{where}.value: required, a value or a list of values")
    if not isinstance(negate, bool):
        raise ValueError(f"{where}.negate: true or false")
    value = tag_value(block["value"], f"{where}.value")
    return TagLeaf(key=key, values=(value,) if isinstance(value, str) else tuple(value), negate=negate)


def legacy_tag_filter(tags: Mapping[str, Any]) -> TagGroup:
    """Carbon's deprecated `tags` filter (key to value or list of values): every key must match."""
    leaves = []
    for key, value in tags.items():
        found = tag_value(value, f"tags.{key}")
        leaves.append(TagLeaf(key=key, values=(found,) if isinstance(found, str) else tuple(found)))
    return TagGroup(op="AND", items=tuple(leaves))
