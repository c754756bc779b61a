"""Which store the settings name: the index folder (FAISS, the default) or Milvus.

:class:`qa_bot.store_api.IndexView`, what an opened store gives its readers, is named here
too, so that the service reaches the stores through this one module.
"""

from __future__ import annotations

from qa_bot.settings import Settings
from qa_bot.store import IndexStore
from qa_bot.store_api import IndexView, Store


def open_store(settings: Settings) -> Store:
    """The store the settings name: the index folder (FAISS, the default) or Milvus.

    The one place that chooses; pymilvus is imported only when Milvus is chosen.
    """
    if settings.store.backend == "milvus":
        from qa_bot.store_milvus import MilvusStore

        return MilvusStore(settings.store, settings.retrieval)
    return IndexStore(settings.index_dir)


__all__ = ["IndexView", "open_store"]
