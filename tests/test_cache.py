"""The result cache: entries named by what they depend on, including the code that made them."""

import sys

import pytest

from helpers import cache


def test_a_changed_module_changes_the_fingerprint(tmp_path, monkeypatch):
    module = tmp_path / "fingerprinted_module.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = cache.code_fingerprint("fingerprinted_module")
    assert len(before) == 16 and before == cache.code_fingerprint("fingerprinted_module")
    module.write_text("VALUE = 2\n")
    cache.code_fingerprint.cache_clear()  # a new process reads the file afresh
    assert cache.code_fingerprint("fingerprinted_module") != before
    sys.modules.pop("fingerprinted_module", None)


def test_a_module_without_source_is_refused_by_name():
    with pytest.raises(ValueError, match="helpers.no_such_module: no source file"):
        cache.code_fingerprint("helpers.no_such_module")


def test_the_song_tag_cache_key_follows_the_port_s_code(tmp_path, monkeypatch):
    from helpers.features import learned

    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF")
    keys = []
    original = cache.CacheEntry.for_payload

    def remember(kind, payload, prefix="", folder=None):
        keys.append(payload)
        return original(kind, payload, prefix, folder=tmp_path)

    def computed(path):
        raise RuntimeError("computed")  # the entry was missing: the port would run now

    monkeypatch.setattr(learned.CacheEntry, "for_payload", remember)
    monkeypatch.setattr(learned, "song_tags", computed)
    with pytest.raises(RuntimeError, match="computed"):
        learned.cached_song_tags(song)
    assert keys[0]["code"] == cache.code_fingerprint(*learned.PORT_MODULES)  # the port's modules
