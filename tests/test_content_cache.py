"""The decrypted-content cache under threads: bounded, and never a partial answer."""
from __future__ import annotations

import threading

from itembank.bank import ContentCache


def test_threads_filling_a_small_cache_always_get_what_they_put_or_a_miss():
    cache = ContentCache(capacity=50)
    failures: list[str] = []

    def work(worker: int) -> None:
        for round_ in range(300):
            ids = {worker * 1000 + (round_ + k) % 80 for k in range(20)}
            found, missing = cache.get_many("db", ids)
            if set(found) | missing != ids or set(found) & missing:
                failures.append(f"worker {worker}: found and missing do not split the ids asked for")
            if any(content != f"content {version_id}" for version_id, content in found.items()):
                failures.append(f"worker {worker}: a content came back under another id")
            cache.put_many("db", {version_id: f"content {version_id}" for version_id in missing})

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(cache._held) <= 50


def test_the_same_version_id_of_two_databases_is_two_entries():
    cache = ContentCache()
    cache.put_many("sqlite:///a", {7: "from a"})
    cache.put_many("sqlite:///b", {7: "from b"})
    assert cache.get_many("sqlite:///a", {7})[0] == {7: "from a"}
    assert cache.get_many("sqlite:///b", {7, 8}) == ({7: "from b"}, {8})
