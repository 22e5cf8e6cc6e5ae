"""Server-side apply and field ownership, as the fake keeps them.

https://kubernetes.io/docs/reference/using-api/server-side-apply/: every write records which
field manager set which fields (``metadata.managedFields``): a create or replace (operation
``Update``) takes the fields it changed, an apply (``PATCH`` with
``application/apply-patch+yaml``, ``fieldManager`` required) owns exactly the fields of its
configuration. An apply that would change a field another manager owns is a 409 Conflict
naming each field and manager, unless ``force=true``, which takes the field over. A field an
applier owned and leaves out of its next configuration is removed, unless another manager
owns it too.

Simplifications, said here so nobody relies on them: a list whose items are all objects with
a ``name`` is merged by name (containers, env, ports, imagePullSecrets — the API's map lists
keyed by name; ``ports`` really is keyed by ``containerPort`` and ``protocol``), every other
list is atomic; the controllers' own writes are not recorded.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
#: a field: ("f", key) steps into an object, ("k", '{"name":"x"}') into a map list's item
Path = tuple[tuple[str, str], ...]
#: what is not a field anyone owns
_SKIP = {"apiVersion", "kind", "status"}
_META = {"labels", "annotations"}


def _keyed(items: Any) -> bool:
    return (
        isinstance(items, list)
        and bool(items)
        and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)
    )


def _key(item: Obj) -> str:
    return json.dumps({"name": item["name"]}, separators=(",", ":"))


def fields(obj: Any, prefix: Path = ()) -> set[Path]:
    """The leaf fields ``obj`` sets."""
    found: set[Path] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not prefix and key in _SKIP:
                continue
            if prefix == (("f", "metadata"),) and key not in _META:
                continue
            here = (*prefix, ("f", key))
            if isinstance(value, dict) and value:
                found |= fields(value, here)
            elif _keyed(value):
                for item in value:
                    found |= fields(item, (*here, ("k", _key(item))))
            else:
                found.add(here)
    return found


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for kind, step in path:
        if kind == "f":
            if not isinstance(node, dict) or step not in node:
                return None
            node = node[step]
        else:
            wanted = json.loads(step)["name"]
            if not isinstance(node, list):
                return None
            node = next((i for i in node if isinstance(i, dict) and i.get("name") == wanted), None)
    return node


def remove(obj: Any, path: Path) -> None:
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    kind, step = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(step, None)


def _drop_unnamed(node: Any) -> None:
    """Items of a map list whose ``name`` was removed are gone as a whole (an env var, a
    container the configuration no longer lists)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, list) and any(isinstance(i, dict) and "name" in i for i in value):
                node[key] = [i for i in value if not isinstance(i, dict) or "name" in i]
            _drop_unnamed(node[key])
    elif isinstance(node, list):
        for item in node:
            _drop_unnamed(item)


def merge(live: Any, applied: Any) -> Any:
    """``applied`` over ``live``: objects field by field, map lists item by item."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for key, value in applied.items():
            out[key] = merge(live.get(key), value) if key in live else copy.deepcopy(value)
        return out
    if _keyed(live) and _keyed(applied):
        by_name = {i["name"]: i for i in live}
        merged = [merge(by_name.get(i["name"]), i) if i["name"] in by_name else i for i in applied]
        named = {i["name"] for i in applied}
        return merged + [i for i in live if i["name"] not in named]
    return copy.deepcopy(applied)


def _dotted(path: Path) -> str:
    return "".join(
        f".{step}" if kind == "f" else f"[name={json.loads(step)['name']}]" for kind, step in path
    )


class Owners:
    """One object's managers: (manager, operation) → the fields it owns."""

    def __init__(self) -> None:
        self.sets: dict[tuple[str, str], set[Path]] = {}
        self.times: dict[tuple[str, str], str] = {}

    def _touch(self, manager: str, operation: str) -> None:
        self.times[(manager, operation)] = (
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )

    def updated(self, manager: str, old: Obj | None, new: Obj) -> None:
        """A create or replace: ``manager`` takes every field whose value it changed."""
        changed = {p for p in fields(new) if old is None or value_at(old, p) != value_at(new, p)}
        gone = fields(old) - fields(new) if old is not None else set()
        for owned in self.sets.values():
            owned.difference_update(changed | gone)
        if changed:
            self.sets.setdefault((manager, "Update"), set()).update(changed)
            self._touch(manager, "Update")
        self._prune()

    def conflicts(self, manager: str, live: Obj, applied: Obj) -> list[tuple[str, str]]:
        """(field, other manager) for each field ``applied`` would change that another owns."""
        found = []
        for path in sorted(fields(applied)):
            if value_at(live, path) == value_at(applied, path):
                continue
            for (other, _), owned in sorted(self.sets.items()):
                if other != manager and path in owned:
                    found.append((_dotted(path), other))
        return found

    def applied(self, manager: str, live: Obj | None, config: Obj, *, force: bool) -> Obj:
        """The object after ``manager`` applied ``config`` (conflicts were checked)."""
        mine = fields(config)
        if force:
            for (other, _), owned in self.sets.items():
                if other != manager:
                    owned.difference_update(mine)
        result: Obj = merge(live or {}, config)
        before = self.sets.get((manager, "Apply"), set())
        others = set().union(*(o for k, o in self.sets.items() if k != (manager, "Apply")))
        for path in sorted(before - mine - others, key=len, reverse=True):
            remove(result, path)
        _drop_unnamed(result)
        self.sets[(manager, "Apply")] = mine
        self._touch(manager, "Apply")
        self._prune()
        return result

    def _prune(self) -> None:
        for key in [k for k, v in self.sets.items() if not v]:
            del self.sets[key]
            self.times.pop(key, None)

    def managed_fields(self, api_version: str) -> list[Obj]:
        """``metadata.managedFields`` as the API shows it (FieldsV1)."""
        entries = []
        for (manager, operation), owned in sorted(self.sets.items()):
            tree: Obj = {}
            for path in owned:
                node = tree
                for kind, step in path:
                    node = node.setdefault(f"{kind}:{step}", {})
            entries.append(
                {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": api_version,
                    "time": self.times.get((manager, operation), ""),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": tree,
                }
            )
        return entries
