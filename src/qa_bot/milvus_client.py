"""The Milvus connection: collections, calls turned into our errors, and the build lock.

Collections (``P`` = ``store.milvus_collection``)::

    P_meta                 the current-generation record, the build lock's record, and each
                           generation's word statistics (see qa_bot.term_stats)
    P_e<epoch>_passages    one row per passage: text span, dense and sparse vectors, outlet and
                           date for filters, and the generation fields that decide visibility
    P_e<epoch>_articles    one row per article per 60,000 characters of its text; part 0 also
                           holds its metadata and the file record of its seed file

An epoch is a set of data collections; a full rebuild (another model, chunker or tokenizer)
writes a new epoch, an incremental build writes into the current one (see
:mod:`qa_bot.milvus_build`). Milvus wants a vector field in every collection: ``P_meta`` and
the articles collection carry a 2-dimensional placeholder that is never searched.

pymilvus is imported here and in the modules that use this one only, so the embedded default
never loads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from qa_bot.errors import IndexError_, IndexLockedError, StoreUnavailableError
from qa_bot.settings import RetrievalSettings, StoreSettings

T = TypeVar("T")

#: The placeholder vector of collections that are never searched by vector.
PLACEHOLDER = [1.0, 0.0]
#: Longest text field Milvus stores (bytes); article text is split in parts below it.
MAX_VARCHAR = 65_535
#: Bytes (UTF-8) of article text per articles row.
TEXT_PART_BYTES = 60_000
CURRENT_KEY = "CURRENT"
LOCK_KEY = "LOCK"
#: Rows asked for per page when reading many (Milvus caps a query at 16,384 rows).
PAGE = 4_000


def literal(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_parts(text: str) -> list[str]:
    """``text`` cut into pieces of at most ``TEXT_PART_BYTES`` bytes of UTF-8, at characters."""
    data = text.encode()
    parts: list[str] = []
    start = 0
    while True:
        end = min(len(data), start + TEXT_PART_BYTES)
        while end < len(data) and data[end] & 0xC0 == 0x80:  # not inside a character
            end -= 1
        parts.append(data[start:end].decode())
        start = end
        if start >= len(data):
            return parts


#: pymilvus pings the server every 10 s even while no call is running; a server keeping gRPC's
#: default ping policy counts those as abuse and, after some minutes of quiet, closes the
#: connection ("too_many_pings"), which pymilvus then may fail to recover. A bot answers
#: nothing for minutes at a time: pings only while a call runs.
IDLE_QUIET = {"grpc.keepalive_permit_without_calls": 0}


class MilvusConnection:
    """One client per store, made on first use; every call goes through :meth:`call`."""

    def __init__(self, settings: StoreSettings, retrieval: RetrievalSettings) -> None:
        self.settings = settings
        self.retrieval = retrieval
        self.prefix = settings.milvus_collection
        self.location = f"Milvus at {settings.milvus_uri}, collections {self.prefix}_*"
        self._client: Any = None
        self._lock = threading.Lock()
        #: Sends a question's dense and sparse searches side by side.
        self.searches = ThreadPoolExecutor(max_workers=4, thread_name_prefix="milvus-search")

    # -- the client ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        try:
            from pymilvus import MilvusClient  # its logging: qa_bot.runtime.quiet_store_client
        except ImportError as exc:  # pragma: no cover - the dependency is declared
            raise StoreUnavailableError(
                'store.backend = "milvus" needs pymilvus: pip install "qa-bot[milvus]"'
            ) from exc
        token = self.settings.milvus_token
        try:
            return MilvusClient(
                uri=self.settings.milvus_uri,
                token=token.get_secret_value() if token else "",
                db_name=self.settings.milvus_database,
                timeout=self.settings.milvus_timeout,
                grpc_options=IDLE_QUIET,
            )
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return StoreUnavailableError(
            f"cannot reach Milvus at {self.settings.milvus_uri} ({reason}); start it or "
            "correct store.milvus_uri (QA_BOT_STORE__MILVUS_URI), or set store.backend = "
            '"faiss" to use the local index; nothing was changed'
        )

    def call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the client, with the engine's failures turned into
        :class:`StoreUnavailableError` (cannot reach it) or :class:`IndexError_` (it refused;
        the message says what we were doing). A collection a restarted server has not loaded
        again (milvus-lite does not) is loaded, and the call made once more."""
        name = kwargs.get("collection_name")
        try:
            return self._call(doing, fn, *args, **kwargs)
        except _NotLoaded:
            self._call(f"load {name}", self.client.load_collection, name)
            return self._call(doing, fn, *args, **kwargs)

    def _call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _is_unreachable(exc):
                raise self._unavailable(exc) from exc
            if isinstance(exc, IndexError_):
                raise
            if kwargs.get("collection_name") and _not_loaded(exc):
                raise _NotLoaded(str(exc)) from exc
            reason = getattr(exc, "message", None) or str(exc)
            raise IndexError_(f"Milvus at {self.settings.milvus_uri}: {doing}: {reason}") from exc

    # -- names and schemas --------------------------------------------------------------------

    @property
    def meta(self) -> str:
        return f"{self.prefix}_meta"

    def passages(self, epoch: int) -> str:
        return f"{self.prefix}_e{epoch}_passages"

    def articles(self, epoch: int) -> str:
        return f"{self.prefix}_e{epoch}_articles"

    def has(self, name: str) -> bool:
        return bool(self.call(f"look for {name}", self.client.has_collection, name))

    def ensure_meta(self) -> None:
        if self.has(self.meta):
            return
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("data", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
        self._create(self.meta, schema, [("v", "FLAT", "L2", {})])

    def create_epoch(self, epoch: int, dimension: int) -> None:
        """The data collections of a new epoch (any left by an interrupted build go first)."""
        from pymilvus import DataType, MilvusClient

        for name in (self.passages(epoch), self.articles(epoch)):
            if self.has(name):
                self.call(f"drop {name}", self.client.drop_collection, name)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        _generation_fields(schema, DataType)
        schema.add_field("article_id", DataType.VARCHAR, max_length=4096)
        for name in ("ordinal", "start", "end", "day"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=4096)
        schema.add_field("outlet", DataType.VARCHAR, max_length=1024)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        index, params = self.dense_index()
        self._create(
            self.passages(epoch),
            schema,
            [("dense", index, "IP", params), ("sparse", "SPARSE_INVERTED_INDEX", "IP", {})],
            scalar=("gen", "gone", "article_id", "outlet", "day"),
        )
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=4200)
        _generation_fields(schema, DataType)
        schema.add_field("article_id", DataType.VARCHAR, max_length=4096)
        articles = ("part", "parts", "day", "first_id", "n_chunks", "size", "mtime_ns")
        for name in (*articles, "stated_start", "stated_end"):  # -1: no stated date
            schema.add_field(name, DataType.INT64)
        for name, length in (("path", 4096), ("outlet", 1024), ("date_text", 1024)):
            schema.add_field(name, DataType.VARCHAR, max_length=length)
        for name, length in (("url", 4096), ("content_hash", 256), ("digest", 512)):
            schema.add_field(name, DataType.VARCHAR, max_length=length)
        schema.add_field("title", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=len(PLACEHOLDER))
        self._create(
            self.articles(epoch),
            schema,
            [("v", "FLAT", "L2", {})],
            scalar=("gen", "gone", "article_id", "part"),
        )

    def dense_index(self) -> tuple[str, dict[str, object]]:
        kind = self.settings.milvus_index
        r = self.retrieval
        if kind.startswith("HNSW"):
            return kind, {"M": r.hnsw_m, "efConstruction": max(200, 2 * r.hnsw_m)}
        if kind.startswith("IVF"):
            return kind, {"nlist": 1024}
        return kind, {}

    def search_params(self, k: int) -> dict[str, object]:
        kind = self.settings.milvus_index
        if kind.startswith("HNSW"):
            return {"metric_type": "IP", "params": {"ef": max(self.retrieval.hnsw_ef_search, k)}}
        if kind.startswith("IVF"):
            return {"metric_type": "IP", "params": {"nprobe": self.retrieval.ivf_nprobe}}
        return {"metric_type": "IP", "params": {}}

    def _create(
        self,
        name: str,
        schema: Any,
        vectors: list[tuple[str, str, str, dict[str, object]]],
        scalar: tuple[str, ...] = (),
    ) -> None:
        client = self.client
        index = client.prepare_index_params()
        for field, kind, metric, params in vectors:
            index.add_index(field_name=field, index_type=kind, metric_type=metric, params=params)
        for field in scalar:
            index.add_index(field_name=field, index_type="INVERTED")
        self.call(
            f"create {name}",
            client.create_collection,
            collection_name=name,
            schema=schema,
            num_shards=self.settings.milvus_shards,
            consistency_level="Strong",
        )
        # Indexes of an empty collection are ready at once; pymilvus would poll each one
        # for half a second (sync=False skips that), and loading waits for them anyway.
        self.call(f"index {name}", client.create_index, name, index, sync=False)
        self.call(
            f"load {name}",
            client.load_collection,
            name,
            replica_number=self.settings.milvus_replicas,
        )

    # -- reading ------------------------------------------------------------------------------

    def query_all(self, collection: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expr``, page by page (a query is capped at 16,384 rows)."""
        client = self.client
        iterator = self.call(
            f"read {collection}",
            client.query_iterator,
            collection_name=collection,
            batch_size=PAGE,
            filter=expr,
            output_fields=fields,
        )
        rows: list[dict[str, Any]] = []
        try:
            while True:
                page = self.call(f"read {collection}", iterator.next)
                if not page:
                    return rows
                rows.extend(dict(r) for r in page)
        finally:
            with contextlib.suppress(Exception):
                iterator.close()

    def get_meta(self, key: str) -> str | None:
        rows = self.call(
            "read the index record",
            self.client.get,
            collection_name=self.meta,
            ids=[key],
            output_fields=["data"],
        )
        return str(rows[0]["data"]) if rows else None

    def put_meta(self, rows: dict[str, str]) -> None:
        self.call(
            "write the index record",
            self.client.upsert,
            collection_name=self.meta,
            data=[{"key": k, "data": v, "v": PLACEHOLDER} for k, v in rows.items()],
        )

    # -- the build lock -----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, wait: float = 0.0) -> Iterator[None]:
        """Only one build at a time, across machines.

        Creating an alias is atomic on the server and fails when the alias exists, so the
        build that creates ``P_build_lock`` holds the lock. Its holder and a heartbeat are
        kept in ``P_meta``: a lock whose holder is a dead process on this machine, or whose
        heartbeat is older than ``store.milvus_lock_ttl``, is taken over. That takeover (drop
        the alias, create it again) is the one step two builders could race in, and only
        after a build crashed and the TTL passed.
        """
        self.ensure_meta()
        alias = f"{self.prefix}_build_lock"
        deadline = time.monotonic() + wait
        while not self._take(alias):
            if self._stale():
                with contextlib.suppress(Exception):
                    self.client.drop_alias(alias=alias)
                continue
            if time.monotonic() >= deadline:
                raise IndexLockedError(
                    f"another `qa-bot index` is updating {self.location}; try again when it is done"
                )
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True)
        self._beat()
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            with contextlib.suppress(Exception):
                self.put_meta({LOCK_KEY: "{}"})
            with contextlib.suppress(Exception):
                self.client.drop_alias(alias=alias)

    def _take(self, alias: str) -> bool:
        try:
            self.client.create_alias(collection_name=self.meta, alias=alias)
        except Exception as exc:
            if _is_unreachable(exc):
                raise self._unavailable(exc) from exc
            if "exist" in str(exc).lower():
                return False
            raise IndexError_(f"{self.location}: cannot take the build lock: {exc}") from exc
        return True

    def _beat(self) -> None:
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}
        self.put_meta({LOCK_KEY: json.dumps(holder)})

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.milvus_lock_ttl / 4):
            with contextlib.suppress(Exception):
                self._beat()

    def _stale(self) -> bool:
        try:
            holder = json.loads(self.get_meta(LOCK_KEY) or "{}")
        except ValueError:
            return True
        if not holder:
            return False  # taken a moment ago, its holder is writing its name
        if holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", 0))):
            return True
        return time.time() - float(holder.get("at", 0)) > self.settings.milvus_lock_ttl


def _generation_fields(schema: Any, types: Any) -> None:
    """``gen``: the generation that wrote the row; ``gone``: the one that retired it (0: live)."""
    schema.add_field("gen", types.INT64)
    schema.add_field("gone", types.INT64)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _NotLoaded(IndexError_):
    """The collection exists but is not loaded (a server restarted)."""


def _not_loaded(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not loaded" in text or "state 'released'" in text or "call load()" in text


def _is_unreachable(exc: BaseException) -> bool:
    """Whether a client error means the server could not be reached (or stopped answering)."""
    try:
        import grpc
        from pymilvus.exceptions import MilvusUnavailableException
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, MilvusUnavailableException | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    text = str(exc).lower()
    return any(
        s in text for s in ("fail connecting", "server unavailable", "deadline", "unavailable")
    )
