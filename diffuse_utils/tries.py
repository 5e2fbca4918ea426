"""Planning exact scoring: the trie of the sequences, cut into rows, the rows batched
into passes.

Scoring a target set (and a tuning step, which is scoring plus a backward pass) needs
``log p(y|x) = sum_i log p(y_i | x, y_<i)`` for every target ``y`` of every prompt
``x``. The sequences ``x + y`` share prefixes: a prompt is shared by all its targets,
the targets all start with ``{``, ``{1`` begins ``{1}``, ``{10}`` and ``{100}``, and
prompts share the chat template's system message. The fewest tokens any method must run
are the distinct proper prefixes of those sequences, once each: the nodes of a trie
(:class:`Trie`).

The sequences, sorted, are cut into rows of trie nodes, as wide as pays
(:func:`pack_rows`: a wide row shares more, a narrow one attends over less), and rows
are batched into forward passes of about ``tokens_per_pass`` tokens
(:func:`plan_passes`), which bounds memory however many targets there are. ``packing``
runs the passes.

Example::

    # list of passes, each a list of rows
    passes = plan_passes([Query(prompt_ids, target_ids)])
    passes_tokens(passes)  # tokens they run, padding included
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TOKENS_PER_PASS = 1024  # tokens per forward pass (rows x width): memory grows with it
# The row width at which a token's attention would cost as much as its matmuls. Fitted
# to tuning steps of the embedded model on a 2-core CPU (one row of 493 nodes against
# two of 268 and 249; one of 598 against two of 331): masked attention over w positions
# costs about w / 4096 of the rest. Larger models spend relatively less on attention, so
# there this errs toward narrower rows, which costs little.
ATTENTION_BREAK_EVEN = 4096


@dataclass
class Query:
    """A prompt and the targets to score after it (token ids; each target ends where its
    answer ends)."""

    prompt_ids: list[int]
    target_ids: list[list[int]]


@dataclass
class Trie:
    """The trie of some token sequences: node ``i`` is a distinct proper prefix
    ``s[:k]``.

    ``tokens[i]`` is that prefix's last token (the node's input), ``depths[i] = k - 1``
    its position, ``parents[i]`` the node of ``s[:k-1]`` (``-1`` at the root).
    ``paths[j]`` lists, for sequence ``j``, the node whose output predicts each of its
    scored tokens (``s[k]`` is predicted at node ``s[:k]``). Parents always come before
    their children.
    """

    tokens: list[int] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    paths: list[list[int]] = field(default_factory=list)
    index: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, sequence: list[int], scored_from: int) -> None:
        """Insert ``sequence``; its tokens from ``scored_from`` on are the ones to
        score."""
        path, parent = [], -1
        for k in range(1, len(sequence)):
            key = tuple(sequence[:k])
            node = self.index.get(key)
            if node is None:
                node = self.index[key] = len(self.tokens)
                self.tokens.append(sequence[k - 1])
                self.depths.append(k - 1)
                self.parents.append(parent)
            parent = node
            if k >= scored_from:
                path.append(node)
        self.paths.append(path)

    def ancestors(self) -> np.ndarray:
        """``(n, n)`` boolean: row ``i`` is true at node ``i`` and every ancestor of
        it."""
        mask = np.zeros((len(self), len(self)), dtype=bool)
        for node, parent in enumerate(self.parents):
            if parent >= 0:
                mask[node] = mask[parent]
            mask[node, node] = True
        return mask


def trie_size(sequences: list[list[int]]) -> int:
    """Nodes of the trie of ``sequences``: the fewest tokens that score all of them."""
    return len({tuple(s[:k]) for s in sequences for k in range(1, len(s))})


@dataclass
class _Row:
    trie: Trie = field(default_factory=Trie)
    # (query, target) per sequence
    members: list[tuple[int, int]] = field(default_factory=list)


def _shared_lengths(sequences: list[list[int]]) -> list[int]:
    """For sorted sequences: how many of each one's trie nodes the previous one already
    has."""
    shared = [0]
    for previous, sequence in zip(sequences, sequences[1:]):
        common = 0
        for a, b in zip(previous, sequence):
            if a != b:
                break
            common += 1
        shared.append(min(common, len(previous) - 1))
    return shared


def _cut(sequences: list[list[int]], shared: list[int], width: int) -> list[int]:
    """Greedy cut of sorted sequences into rows of at most ``width`` trie nodes: the
    start index of each row."""
    starts, nodes = [0], len(sequences[0]) - 1
    for i in range(1, len(sequences)):
        nodes += len(sequences[i]) - 1 - shared[i]
        if nodes > width:
            starts.append(i)
            nodes = len(sequences[i]) - 1
    return starts


def _even_cut(sequences: list[list[int]], shared: list[int], width: int) -> list[int]:
    """:func:`_cut` at the narrowest width that needs no more rows than ``width`` does:
    rows as even in size as their number allows, so batching them wastes little
    padding."""
    count = len(_cut(sequences, shared, width))
    low, high = 1, width
    while low < high:
        middle = (low + high) // 2
        low, high = (
            (low, middle)
            if len(_cut(sequences, shared, middle)) <= count
            else (middle + 1, high)
        )
    return _cut(sequences, shared, low)


def _row_sizes(
    sequences: list[list[int]], shared: list[int], starts: list[int]
) -> list[int]:
    """Trie nodes of each row that starts at ``starts``."""
    ends = starts[1:] + [len(sequences)]
    return [
        len(sequences[start])
        - 1
        + sum(len(sequences[i]) - 1 - shared[i] for i in range(start + 1, end))
        for start, end in zip(starts, ends)
    ]


def _pass_groups(sizes: list[int], tokens_per_pass: int) -> list[list[int]]:
    """Row indices, longest row first, grouped so a pass holds about ``tokens_per_pass``
    tokens, padding to its longest row included (a row wider than that is a pass of its
    own)."""
    groups, current, width = [], [], 0
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        if current and (len(current) + 1) * width > tokens_per_pass:
            groups.append(current)
            current = []
        if not current:
            width = sizes[index]
        current.append(index)
    return groups + ([current] if current else [])


def plan_cost(
    sizes: list[int], tokens_per_pass: int, break_even: float = ATTENTION_BREAK_EVEN
) -> float:
    """Estimated cost of running rows of these trie sizes, in tokens: each pass runs its
    rows padded to the longest (the matmuls), and a token of a row ``w`` wide attends to
    ``w`` positions, which costs ``w / break_even`` of its matmuls."""
    return sum(
        len(group) * sizes[group[0]] * (1 + sizes[group[0]] / break_even)
        for group in _pass_groups(sizes, tokens_per_pass)
    )


def pack_rows(
    queries: list[Query],
    row_width: int | None = None,
    tokens_per_pass: int = TOKENS_PER_PASS,
    break_even: float = ATTENTION_BREAK_EVEN,
) -> list[_Row]:
    """Sort every ``prompt + target`` sequence and cut the list into tries of at most
    ``row_width`` nodes (default ``tokens_per_pass``; a sequence longer than that gets a
    row of its own), choosing the width that :func:`plan_cost` finds cheapest.

    Sorting keeps shared prefixes in the same row. Wide rows compute less twice (every
    row repeats the prompt, or at least the chat template, it starts with); narrow rows
    spend less on attention, whose cost grows with the square of the width. A 198-token
    prompt with 16 biography openings is 777 trie nodes: one row runs 777 tokens, rows
    of 256 would run 3,567. The candidates are widths a quarter-octave apart, each cut
    evenly."""
    cap = tokens_per_pass if row_width is None else row_width
    items = sorted(
        (
            (list(query.prompt_ids) + list(target), q, j)
            for q, query in enumerate(queries)
            for j, target in enumerate(query.target_ids)
        ),
        key=lambda item: item[0],
    )
    sequences = [sequence for sequence, _, _ in items]
    shared = _shared_lengths(sequences)
    longest = max(len(sequence) - 1 for sequence in sequences)
    widths, width = [], cap
    while width > longest:
        widths.append(width)
        width = int(width / 2**0.25)
    plans = {tuple(_even_cut(sequences, shared, w)) for w in widths + [max(longest, 1)]}
    starts = list(
        min(
            plans,
            key=lambda plan: (
                plan_cost(
                    _row_sizes(sequences, shared, list(plan)),
                    tokens_per_pass,
                    break_even,
                ),
                len(plan),
            ),
        )
    )
    rows = []
    for start, end in zip(starts, starts[1:] + [len(items)]):
        row = _Row()
        for sequence, q, j in items[start:end]:
            row.trie.add(sequence, len(queries[q].prompt_ids))
            row.members.append((q, j))
        rows.append(row)
    return rows


def _passes(rows: list[_Row], tokens_per_pass: int) -> list[list[_Row]]:
    """Rows grouped into passes by :func:`_pass_groups`."""
    return [
        [rows[i] for i in group]
        for group in _pass_groups([len(row.trie) for row in rows], tokens_per_pass)
    ]


def plan_passes(
    queries: list[Query],
    row_width: int | None = None,
    tokens_per_pass: int = TOKENS_PER_PASS,
    break_even: float = ATTENTION_BREAK_EVEN,
) -> list[list[_Row]]:
    """The forward passes that score every target of every query (rows of at most
    ``row_width`` trie nodes, default ``tokens_per_pass``; passes of about
    ``tokens_per_pass`` tokens; the row width chosen with the attention ``break_even``
    of :func:`plan_cost`)."""
    for name, value in (("row_width", row_width), ("tokens_per_pass", tokens_per_pass)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(
                f"{name} must be a positive integer (tokens), got {value!r}"
            )
    empty = [
        q
        for q, query in enumerate(queries)
        if not query.target_ids or not all(query.target_ids)
    ]
    if empty:
        raise ValueError(
            f"queries {empty} have no targets or an empty target: every target needs "
            "at least one token"
        )
    return _passes(
        pack_rows(queries, row_width, tokens_per_pass, break_even), tokens_per_pass
    )


def passes_tokens(passes: list[list[_Row]]) -> int:
    """Tokens a plan runs through the model, padding included."""
    return sum(len(rows) * max(len(row.trie) for row in rows) for rows in passes)
