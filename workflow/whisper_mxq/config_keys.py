"""Unknown config keys, named the way a person fixes them: the key, where it came from,
the closest valid key. (Schema validation says the same in hundreds of lines: the whole
schema and config dumped after the one line that matters.)"""

from __future__ import annotations

import difflib
import os
from pathlib import Path


def unknown_keys(config: dict, schema: dict, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list[str]]]:
    """(path of the key, valid keys at that level) for every key the schema does not
    know, depth first in the config's order."""
    found = []
    known = schema.get("properties", {})
    for key, value in config.items():
        if key not in known:
            if schema.get("additionalProperties") is False:
                found.append(((*path, key), list(known)))
        elif isinstance(value, dict) and known[key].get("type") == "object":
            found += unknown_keys(value, known[key], (*path, key))
    return found


def _holds(tree: object, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def origin(path: tuple[str, ...], configfiles: list[str], cli: dict) -> str:
    """Where a key was set: the last config file holding it, or the command line."""
    import yaml

    if _holds(cli or {}, path):
        return "the command line (--config)"
    for f in reversed(configfiles):
        if os.path.isfile(f) and _holds(yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}, path):
            return f
    return "the config"


def message(config: dict, schema_path: str, configfiles: list[str], cli: dict) -> str | None:
    """One short message for the first unknown key, or None when every key is known."""
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    problems = unknown_keys(config, schema)
    if not problems:
        return None
    path, valid = problems[0]
    name = ".".join(path)
    close = difflib.get_close_matches(path[-1], valid, n=1)
    hint = f"did you mean {'.'.join((*path[:-1], close[0]))}?" if close else f"valid keys here: {', '.join(valid)}"
    more = f" ({len(problems) - 1} more unknown key(s) after this one)" if len(problems) > 1 else ""
    return (
        f"config key {name!r} (from {origin(path, configfiles, cli)}) is not a setting of this workflow: "
        f"{hint}{more} (every key and its meaning: workflow/schemas/config.schema.yaml)"
    )
