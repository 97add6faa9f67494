"""Model work cut into batches, once for the whole stage, and shared among shards by whole batches.

Why: a batched engine's output for one input depends on the other inputs of its batch (padding and
the batch's shape change the floating-point sums: on the transformers backends one translation of
hundreds came out with a repeated token when its batch changed). So which inputs share a batch is
decided once, over every unique input of the stage (all of D_synth's segments of a language pair,
all of D's questions), independently of sharding, of what is cached and of where a run stopped:

- :func:`plan` sorts the unique inputs by length (then text) and cuts batches of ``batch_size``;
- shard I of N takes batches I, I+N, I+2N, ... (:func:`sdrrl.pipeline.workdir.take_shard`);
- :func:`run` looks each batch up in the cache: a batch whose every input is cached is read from
  it; any other batch goes to the model whole and is stored in one transaction, so a killed run
  leaves each batch cached entirely or not at all, and the rerun computes the missing batches as
  they were planned.

What a cached output is: the cache is keyed by input, not by batch (keys stay those of earlier
versions, and other builds reuse outputs of equal inputs). Where the cache already holds an
input's output, that output is used even when the rest of its batch is computed anew, and the
value returned is always the one the cache holds, so a rerun reads what this run wrote.

The guarantee: a stage's output depends only on its input and its settings (``batch_size`` and
length bucketing included) whenever the cache held no outputs of the same model and settings for
these inputs from another build (a fresh cache, or one only this build wrote); then sharded (any
N, shards on one cache or one cache per machine), killed-and-resumed and unsharded runs write
byte-identical files. A cache shared with other builds gives their outputs for equal inputs
(nothing is computed twice), which may differ from what a batch of this build would have computed.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from sdrrl.pipeline import workdir
from sdrrl.pipeline.cache import Cache
from sdrrl.pipeline.progress import Progress


def plan(items: Sequence[str], lengths: Sequence[int], batch_size: int, by_length: bool = True) -> list[list[str]]:
    """Cut unique ``items`` into model batches: sorted by length (then text), or in the given order."""
    order = list(range(len(items)))
    if by_length:
        order.sort(key=lambda i: (lengths[i], items[i]))
    return [[items[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]


def run(items: Sequence[str], keys: Mapping[str, str], kind: str, cache: Cache | None,
        lengths: Callable[[list[str]], Sequence[int]], compute: Callable[[list[str]], list[Any]],
        batch_size: int, by_length: bool = True, num_shards: int = 1, shard_index: int = 0,
        progress: Progress | None = None) -> dict[str, Any]:
    """The outputs of this shard's batches of the unique ``items`` (of every batch when unsharded):
    from the ``cache`` where it holds a whole batch, else from ``compute(batch)`` (the model), each
    computed batch stored under ``keys[item]`` as one transaction of ``kind``. ``lengths(items)``
    gives the lengths the batches are sorted by; it is not called when nothing is left to compute
    in an unsharded run (the plan cannot matter then)."""
    items = list(dict.fromkeys(items))
    cached = cache.get_many(keys[i] for i in items) if cache is not None else {}
    if num_shards == 1 and all(keys[i] in cached for i in items):
        if progress is not None:
            progress.total = len(items)
            progress.skip(len(items))
        return {i: cached[keys[i]] for i in items}
    sizes = lengths(items) if by_length else [0] * len(items)
    mine = workdir.take_shard(plan(items, sizes, batch_size, by_length), num_shards, shard_index)
    if progress is not None:
        progress.total = sum(map(len, mine))
    out: dict[str, Any] = {}
    for batch in mine:
        if all(keys[i] in cached for i in batch):
            out.update((i, cached[keys[i]]) for i in batch)
            if progress is not None:
                progress.skip(len(batch))
            continue
        fresh = compute(batch)
        if cache is None:
            out.update(zip(batch, fresh))
        else:
            cache.put_many(kind, {keys[i]: o for i, o in zip(batch, fresh)})
            stored = cache.get_many(keys[i] for i in batch)  # an output cached before stays the output
            out.update((i, stored[keys[i]]) for i in batch)
        if progress is not None:
            progress.update(len(batch))
    return out
