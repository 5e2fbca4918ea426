"""Profiles: the tuning runs that several chapters share, with one source of settings
each.

Chapter 3 tunes RNG and BABYNAMES, chapter 4 the six-task adapter, chapter 5 Tuned-ID;
later chapters reuse those adapters from the cache, which finds them only if every
chapter asks for exactly the same settings. So no chapter types them: each reads the
run's entry in a profile (``profiles.yaml``: ``default`` for the CPU book, ``full``,
``ci``, ``gpu`` for the release's settings on a GPU), and the chapter that owns a run
may override fields of it by name (its papermill parameters). A profile may also be the
path of a YAML file of your own, with the same entries, that ``extends`` one of the
book's.

A profile also names the chapters' own parameters it changes (sample counts, the model,
the device): :func:`apply` sets them in a notebook, except where the reader or
papermill gave a value. ``profile = "auto"`` (:func:`resolve`) is ``default`` on a
machine without a CUDA GPU, and on one the largest profile with an ``auto`` entry that
its memory holds.

Example::

    run("six_tasks")  # TuneSettings(update_per='prompt', passes=8, lr=0.0005, ...)
    run(
        "six_tasks", "gpu", lr=None
    )  # the release's settings; None leaves a field to the profile
    entry("babynames", "ci")["monitor"]  # {'diagnose_every': 5, 'n_questions': 4, ...}
    resolve("auto")  # ('default', 'auto: no CUDA GPU') on a CPU
    chapter_settings("04_leave_one_out", "full")["n_samples"]  # 100
    profile = apply(globals(), "04_leave_one_out", "auto")  # in a notebook
"""

from __future__ import annotations

from dataclasses import fields
from importlib import resources
from pathlib import Path

import yaml

from .schedule import TuneSettings, tune_settings

RUNS = ("rng", "babynames", "six_tasks", "tuned_id")


def _book_profiles() -> dict:
    text = resources.files("diffuse_utils").joinpath("profiles.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            value = _merge(base[key], value)
        merged[key] = value
    return merged


def profile_entries(profile: str = "default") -> dict:
    """Every run's entry in ``profile`` (a name in ``profiles.yaml`` or a YAML file's
    path), with what it ``extends`` filled in."""
    book = _book_profiles()
    if profile in book:
        own = book[profile]
    elif str(profile).endswith((".yaml", ".yml")) and Path(profile).is_file():
        own = yaml.safe_load(Path(profile).read_text("utf-8")) or {}
    else:
        raise ValueError(
            f"unknown profile {profile!r}: the book's are {sorted(book)}, or give "
            "the path of a YAML file whose entries extend one of them"
        )
    parent = own.get("extends")
    base = profile_entries(parent) if parent else {}
    return _merge(base, {k: v for k, v in own.items() if k != "extends"})


def entry(name: str, profile: str = "default") -> dict:
    """The entry of the shared run ``name`` (one of ``RUNS``) in ``profile``."""
    entries = profile_entries(profile)
    if name not in entries:
        raise ValueError(
            f"profile {profile!r} has no run {name!r}; its runs are {sorted(entries)}"
        )
    return entries[name]


def run(name: str, profile: str = "default", **overrides) -> TuneSettings:
    """The :class:`TuneSettings` of the shared run ``name`` in ``profile``, with
    ``overrides`` replaced where they are not ``None`` (a chapter's parameters left at
    ``None`` keep the profile's value). Fields the entry does not name are the release's
    defaults."""
    settings = dict(entry(name, profile).get("settings") or {})
    known = {f.name for f in fields(TuneSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"run {name!r} of profile {profile!r} names unknown settings {unknown}"
        )
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return tune_settings(**settings)


def chapter_settings(chapter: str, profile: str = "default") -> dict:
    """The parameters ``profile`` gives notebook ``chapter`` (its file name without
    ``.ipynb``): the profile's ``all`` entry, then the chapter's own."""
    chapters = profile_entries(profile).get("chapters") or {}
    return {**(chapters.get("all") or {}), **(chapters.get(chapter) or {})}


def _auto_profiles() -> list[tuple[float, str]]:
    """``(min_gib, name)`` of the book's profiles that ``"auto"`` may pick, largest
    first (a profile's own ``auto`` entry: not inherited)."""
    book = _book_profiles()
    return sorted(
        ((own["auto"]["min_gib"], name) for name, own in book.items() if "auto" in own),
        reverse=True,
    )


def resolve(profile: str = "auto", gpu_gib: float | None = None) -> tuple[str, str]:
    """``(profile, why)``: ``profile`` itself unless it is ``"auto"``, which is
    ``default`` without a CUDA GPU and otherwise the largest profile whose ``auto``
    entry's ``min_gib`` the GPU's memory holds. ``gpu_gib``: the GPU's memory in GiB
    (default: CUDA device 0's, ``None`` without CUDA)."""
    if profile != "auto":
        profile_entries(profile)  # an unknown profile fails here, with the known ones
        return profile, "named"
    if gpu_gib is None:
        import torch

        if torch.cuda.is_available():
            gpu_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    if gpu_gib is None:
        return "default", "auto: no CUDA GPU"
    name = next(name for min_gib, name in _auto_profiles() if gpu_gib >= min_gib)
    return name, f"auto: a CUDA GPU with {gpu_gib:.1f} GiB"


def apply(namespace: dict, chapter: str, profile: str = "auto", **resolve_kw) -> str:
    """Set in ``namespace`` (a notebook's ``globals()``) the parameters the chosen
    profile gives ``chapter``, where each still holds its default profile's value (one
    the reader or papermill changed is kept); print what was chosen and changed, and
    return the profile's name for the shared runs (``profiles.run(name, profile)``).
    ``resolve_kw``: passed to :func:`resolve`."""
    name, why = resolve(profile, **resolve_kw)
    defaults, chosen = (
        chapter_settings(chapter, "default"),
        chapter_settings(chapter, name),
    )
    changed = []
    for key, value in chosen.items():
        if key not in namespace or key not in defaults:
            continue  # `all` names parameters this chapter may not have
        if namespace[key] == defaults[key] and value != defaults[key]:
            namespace[key] = value
            changed.append(f"{key} {defaults[key]!r} -> {value!r}")
    print(f"profile {name} ({why})" + (": " + "; ".join(changed) if changed else ""))
    return name
