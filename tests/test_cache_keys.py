"""cache_keys: results are written whole or not at all, also by two processes at once."""
import json
import os
from pathlib import Path

from diffuse_utils import cache_keys


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "config.json").write_text(text)
    return path


def test_publish_replaces_a_folder_and_leaves_nothing_beside_it(tmp_path):
    final = _folder(tmp_path / "run", "old")
    partial = _folder(cache_keys.partial_path(final), "new")
    assert partial.name.endswith(".partial") and str(os.getpid()) in partial.name
    cache_keys.publish(partial, final)
    assert (final / "config.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_publish_keeps_another_process_copy_of_the_same_result(tmp_path, monkeypatch):
    """Another process publishes between our move aside and our rename: its copy stays."""
    final = tmp_path / "run"
    partial = _folder(cache_keys.partial_path(final), "ours")
    real_rename = Path.rename

    def rename(self, target):
        if self == final:   # nothing to move aside yet; then the other process's copy lands
            raise FileNotFoundError(self)
        if self == partial and not final.exists():
            _folder(final, "theirs")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    cache_keys.publish(partial, final)
    assert (final / "config.json").read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_write_result_writes_through_its_own_partial_name(tmp_path):
    path = tmp_path / "measures" / "m-abc.json"
    cache_keys.write_result(path, {"k": 1}, [1, 2], 0.5)
    assert json.loads(path.read_text()) == {"config": {"k": 1}, "result": [1, 2], "seconds": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["m-abc.json"]
