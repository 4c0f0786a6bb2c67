"""`SliceTable`: every (label, slice) record of a session in one place.

A record is a `SliceState`: the slice's prompts (or None), its status ("none", "predicted",
"edited", "committed") and the generator's confidence (or None). The session changes records
only through `put`, so the three never drift apart; a record with nothing in it is dropped.
Readers get copies (`state`) or a read-only view of the prompts (`prompts`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from napari_fob.core.prompts import PromptSet
from napari_fob.session.history import SliceState

Key = tuple[int, int]


class PromptsView(Mapping[Key, PromptSet]):
    """The prompts of every record that has some, read-only (a `Mapping`)."""

    def __init__(self, rows: dict[Key, SliceState]) -> None:
        self._rows = rows

    def __getitem__(self, key: Key) -> PromptSet:
        row = self._rows.get((int(key[0]), int(key[1])))
        if row is None or row.prompts is None:
            raise KeyError(key)
        return row.prompts

    def __iter__(self) -> Iterator[Key]:
        return (k for k, row in self._rows.items() if row.prompts is not None)

    def __len__(self) -> int:
        return sum(row.prompts is not None for row in self._rows.values())

    def __repr__(self) -> str:
        return f"PromptsView({len(self)} slices)"


class SliceTable:
    """See the module docstring."""

    def __init__(self) -> None:
        self._rows: dict[Key, SliceState] = {}
        self.prompts = PromptsView(self._rows)

    def state(self, key: Key) -> SliceState:
        """A copy of the record of `key` (an empty one when there is none)."""
        row = self._rows.get((int(key[0]), int(key[1])))
        if row is None:
            return SliceState(None)
        return SliceState(
            None if row.prompts is None else row.prompts.copy(), row.status, row.confidence
        )

    def put(self, key: Key, state: SliceState) -> None:
        """Replace the record of `key` (copied); an empty state removes it."""
        key = (int(key[0]), int(key[1]))
        empty = state.prompts is None and state.status == "none" and state.confidence is None
        if empty:
            self._rows.pop(key, None)
            return
        self._rows[key] = SliceState(
            None if state.prompts is None else state.prompts.copy(),
            state.status,
            None if state.confidence is None else float(state.confidence),
        )

    def status(self, key: Key) -> str:
        row = self._rows.get((int(key[0]), int(key[1])))
        return "none" if row is None else row.status

    def confidence(self, key: Key) -> float | None:
        row = self._rows.get((int(key[0]), int(key[1])))
        return None if row is None else row.confidence

    def keys(self, label: int | None = None) -> list[Key]:
        """Every key with a record (of `label` only when given), sorted. The rows are copied
        in one step first (atomic under the interpreter lock): a worker may list them while
        the main thread adds one (a point added during a commit)."""
        rows = list(self._rows)
        return sorted(k for k in rows if label is None or k[0] == int(label))
