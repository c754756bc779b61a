"""Incremental index builds: embed only what changed since the last build.

A file is unchanged when its size and modification time match the manifest (no read at all),
or when its content hash does. Unchanged files keep their passages and vectors (the store
copies them into the new generation, or leaves them in place); new and changed files are
parsed, chunked and embedded; deleted files drop out.
A different model or chunker setting, a corrupted previous index, or ``force`` means a full
rebuild, and the report says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from qa_bot.chunking import chunk_article, embedding_text
from qa_bot.corpus import read_article
from qa_bot.embedding import Embedder
from qa_bot.errors import IndexError_, SeedsError
from qa_bot.models import Article, Chunk
from qa_bot.seed_files import SkippedFile, SourceFile, discover
from qa_bot.settings import Settings
from qa_bot.sidecar import Sidecar, load_sidecar, sidecar_fingerprint
from qa_bot.skip_state import SkippedState, load_skipped, save_skipped
from qa_bot.store_api import FORMAT_VERSION, FileRecord, FreshArticle, IndexView, Manifest, Store
from qa_bot.stores import open_store

ProgressFactory = Callable[[int], Callable[[int], None]]
"""Given the number of chunks to embed, returns the callback that advances a progress bar."""


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    #: Files read through links out of the seeds folder (``seeds.follow_symlinks_outside``).
    outside: list[str] = field(default_factory=list)
    #: Broken entries of the metadata file (listed in ``skipped``): an error for `qa-bot index`.
    metadata_errors: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    full_rebuild_reason: str | None = None
    #: Set when only the BM25 postings had to be rebuilt (a new tokenizer version).
    lexical_rebuild_reason: str | None = None
    generation: str | None = None
    seconds: float = 0.0
    onnx_exported: bool = False
    reader_exported: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.added
            or self.updated
            or self.removed
            or self.full_rebuild_reason
            or self.lexical_rebuild_reason
        )

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


@dataclass(frozen=True)
class _Plan:
    keep: dict[str, FileRecord]
    fresh: dict[str, tuple[Article, FileRecord]]
    report: IndexReport
    #: Files read and found unusable, remembered so they are not "changed" next time.
    unusable: dict[str, SkippedState]


def chunking_key(settings: Settings) -> dict[str, object]:
    """What the index's windows and word postings were made with, stored in the manifest.

    Everything but ``tokenizer`` decides the windows, hence the vectors: a change there
    re-embeds everything. The tokenizer only decides the BM25 postings, which every build
    rebuilds from the stored window texts anyway (see :func:`tokenizer_changed`).
    """
    from qa_bot import text
    from qa_bot.chunking import HARD_MAX_CHARS

    return {
        **settings.chunking.model_dump(),
        "hard_max_chars": HARD_MAX_CHARS,
        # 4: a photo caption's window holds its credit ("... 2016 © AFP"); 5: a "READ MORE"
        # link to another story is a window of its own; 6: so is the site's note of its other
        # addresses, with the addresses it lists.
        "scheme": 6,
        "tokenizer": text.TOKENIZER_VERSION,
    }


def _windows_key(key: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in key.items() if k != "tokenizer"}


def tokenizer_changed(settings: Settings, manifest: Manifest) -> bool:
    """The index's word postings were made by another version of :func:`qa_bot.text.terms`.

    Questions are tokenized by the running version, so such an index would miss words it
    holds: it must be refreshed before it is asked (no re-embedding needed).
    """
    return manifest.chunking.get("tokenizer") != chunking_key(settings)["tokenizer"]


def windows_changed(settings: Settings, manifest: Manifest) -> bool:
    """The index's windows were cut by other chunker settings or another version of the
    chunker: its passages are not the ones this version would quote, so it is rebuilt."""
    return _windows_key(manifest.chunking) != _windows_key(chunking_key(settings))


def sidecar_key(overrides: dict[str, object] | None) -> str:
    """Short hash of a file's sidecar entry: editing the entry re-indexes that file only."""
    return hashlib.sha256(sidecar_fingerprint(overrides).encode()).hexdigest()[:16]


def stale_files(settings: Settings, manifest: Manifest) -> list[str]:
    """Seed files that differ from the index at a glance (stat and sidecar, no reads); a
    file skipped by the last build counts only once it has changed."""
    files, skipped = _discover(settings)
    sidecar = _load_sidecar(settings, files, skipped)
    remembered = load_skipped(settings.index_dir, settings.max_file_bytes)
    changed = []
    for f in files:
        record = manifest.files.get(f.rel)
        if record is None and f.rel in remembered and remembered[f.rel].matches(f):
            continue  # skipped last time, and not touched since
        if not _looks_unchanged(record, f, _key(sidecar, f.rel)):
            changed.append(f.rel)
    current = {f.rel for f in files}
    changed.extend(sorted(set(manifest.files) - current))
    return changed


def field_origins(settings: Settings) -> dict[str, dict[str, str]]:
    """Where each seed file's title, outlet and date come from (page metadata, text,
    ``metadata.toml``), by file: read afresh, as the next build would read them."""
    files, skipped = _discover(settings)
    sidecar = _load_sidecar(settings, files, skipped)
    origins: dict[str, dict[str, str]] = {}
    for source in files:
        article, _ = read_article(source, sidecar.entries.get(source.rel), settings.max_file_bytes)
        if article is not None:
            origins[source.rel] = dict(article.origins)
    return origins


def _discover(settings: Settings) -> tuple[list[SourceFile], list[SkippedFile]]:
    return discover(settings.seeds_dir, follow_outside=settings.seeds.follow_symlinks_outside)


def _load_sidecar(
    settings: Settings, files: list[SourceFile], skipped: list[SkippedFile]
) -> Sidecar:
    return load_sidecar(
        settings.seeds_dir,
        settings.metadata_file,
        known={f.rel for f in files} | {s.path for s in skipped},
        limit=settings.max_file_bytes,
        follow_outside=settings.seeds.follow_symlinks_outside,
    )


def _key(sidecar: Sidecar, rel: str) -> str | None:
    """The file's sidecar key; None when its entry is broken (the indexed one stands)."""
    return None if sidecar.holds(rel) else sidecar_key(sidecar.entries.get(rel))


def _sidecar_skips(settings: Settings, sidecar: Sidecar) -> list[SkippedFile]:
    """The metadata file's problems, as lines of the report."""
    lines = []
    for problem in sidecar.problems:
        tail = ""
        if problem.fatal:
            tail = "; this entry is not applied" if problem.key is not None else ""
            tail = tail or "; no entry of it is applied"
        lines.append(SkippedFile(settings.metadata_file, problem.describe() + tail))
    return lines


def metadata_report(settings: Settings, manifest: Manifest) -> IndexReport | None:
    """What is wrong with the metadata file, for a front that answers from the index as it
    is (nothing to refresh); None when nothing is."""
    files, skipped = _discover(settings)
    sidecar = _load_sidecar(settings, files, skipped)
    if not sidecar.problems:
        return None
    return IndexReport(
        skipped=_sidecar_skips(settings, sidecar),
        metadata_errors=len(sidecar.errors),
        chunks_total=manifest.chunks,
    )


def _looks_unchanged(record: FileRecord | None, source: SourceFile, key: str | None) -> bool:
    """Same size and time as indexed, and the same sidecar entry (``key`` None: not checked)."""
    return (
        record is not None
        and (record.size, record.mtime_ns) == (source.size, source.mtime_ns)
        and (key is None or record.digest.endswith(":" + key))
    )


def update_index(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    progress: ProgressFactory | None = None,
    lock_wait: float = 0.0,
) -> IndexReport:
    """Bring the index in line with the seeds folder; returns what was done."""
    started = time.perf_counter()
    store = open_store(settings)
    with store.lock(wait=lock_wait):
        files, skipped = _discover(settings)
        sidecar = _load_sidecar(settings, files, skipped)
        previous, reason = _previous(store, settings, embedder, force)
        plan = _plan(files, skipped, sidecar, previous, settings)
        save_skipped(settings.index_dir, settings.max_file_bytes, plan.unusable)
        report = plan.report
        report.skipped.extend(_sidecar_skips(settings, sidecar))
        report.metadata_errors = len(sidecar.errors)
        report.full_rebuild_reason = reason
        if previous is not None and tokenizer_changed(settings, previous.manifest):
            report.lexical_rebuild_reason = (
                "the search tokenizer changed: word index rebuilt, no passage re-embedded"
            )
        if previous is not None and not report.changed:
            report.chunks_total = previous.n_chunks
            report.generation = previous.generation
            report.seconds = time.perf_counter() - started
            if _records_moved(previous.manifest, plan.keep):
                store.refresh_records(previous, plan.keep)
            previous.close()
            return report
        if not plan.keep and not plan.fresh:
            raise SeedsError(
                f"no usable article in {settings.seeds_dir}"
                + (
                    " (skipped: "
                    + "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:5])
                    + ")"
                    if report.skipped
                    else ""
                )
                + ". Add .txt or .md files and run `qa-bot index` again."
            )
        report.generation = _write(store, settings, embedder, previous, plan, progress)
        if previous is not None:
            previous.close()
        report.chunks_total = sum(r.chunks for r in plan.keep.values()) + report.chunks_embedded
        report.seconds = time.perf_counter() - started
        return report


def _previous(
    store: Store, settings: Settings, embedder: Embedder, force: bool
) -> tuple[IndexView | None, str | None]:
    if store.current() is None:
        return None, "no index yet"
    try:
        snapshot = store.open(settings.retrieval)
    except IndexError_ as exc:
        return None, f"the previous index is unusable ({exc})"
    manifest = snapshot.manifest
    if force:
        reason = "--force"
    elif manifest.model_id != embedder.model_id:
        reason = f"embedding model changed ({manifest.model_id} -> {embedder.model_id})"
    elif windows_changed(settings, manifest):
        reason = "chunker settings changed"
    else:
        return snapshot, None
    snapshot.close()
    return None, reason


def _plan(
    files: list[SourceFile],
    skipped: list[SkippedFile],
    sidecar: Sidecar,
    previous: IndexView | None,
    settings: Settings,
) -> _Plan:
    report = IndexReport(skipped=list(skipped), outside=[f.rel for f in files if f.outside])
    old = previous.manifest.files if previous else {}
    # Files unchanged at a glance first, so a copy of one is known as a copy whatever its name.
    keep: dict[str, FileRecord] = {
        f.rel: old[f.rel]
        for f in files
        if _looks_unchanged(old.get(f.rel), f, _key(sidecar, f.rel))
    }
    copies = _Copies(keep, previous)
    fresh: dict[str, tuple[Article, FileRecord]] = {}
    unusable: dict[str, SkippedState] = {}
    for source in files:
        if source.rel in keep:
            report.unchanged.append(source.rel)
            continue
        overrides = sidecar.entries.get(source.rel)
        article, why = read_article(source, overrides, settings.max_file_bytes)
        original = copies.original_of(source, article) if article is not None else None
        if article is None or original is not None:
            why = why if article is None else f"same text as {original}: indexed once"
            report.skipped.append(SkippedFile(source.rel, why or "unreadable"))
            unusable[source.rel] = SkippedState(source.size, source.mtime_ns, why or "unreadable")
            continue
        record = old.get(source.rel)
        digest = f"{article.meta.content_hash}:{sidecar_key(overrides)}"
        if record is not None and record.digest == digest:
            keep[source.rel] = replace(record, size=source.size, mtime_ns=source.mtime_ns)
            report.unchanged.append(source.rel)
            continue
        fresh[source.rel] = (
            article,
            FileRecord(source.rel, digest, source.size, source.mtime_ns, article.id, 0),
        )
        (report.updated if record is not None else report.added).append(source.rel)
    report.removed = sorted(rel for rel in old if rel not in keep and rel not in fresh)
    return _Plan(keep, fresh, report, unusable)


class _Copies:
    """Which file an article is a copy of: one read in this build, or one kept from the last
    (compared only when the sizes agree, so an unchanged corpus is not read back)."""

    def __init__(self, keep: dict[str, FileRecord], previous: IndexView | None):
        self._previous = previous
        self._seen: dict[str, str] = {}
        self._kept_keys: dict[str, str] = {}
        self._by_size: dict[int, list[tuple[str, FileRecord]]] = {}
        for rel, record in keep.items():
            self._by_size.setdefault(record.size, []).append((rel, record))

    def original_of(self, source: SourceFile, article: Article) -> str | None:
        text_key = _text_key(article)
        if text_key in self._seen:
            return self._seen[text_key]
        for rel, record in self._by_size.get(source.size, ()):
            if self._kept_key(rel, record) == text_key:
                return rel
        self._seen[text_key] = source.rel
        return None

    def _kept_key(self, rel: str, record: FileRecord) -> str | None:
        if rel not in self._kept_keys and self._previous is not None:
            text = self._previous.article_text(record.article_id)
            self._kept_keys[rel] = hashlib.sha256((text or "").encode()).hexdigest()
        return self._kept_keys.get(rel)


def _text_key(article: Article) -> str:
    return hashlib.sha256(article.text.encode()).hexdigest()


def _records_moved(manifest: Manifest, keep: dict[str, FileRecord]) -> bool:
    return any(manifest.files.get(rel) != rec for rel, rec in keep.items())


def _write(
    store: Store,
    settings: Settings,
    embedder: Embedder,
    previous: IndexView | None,
    plan: _Plan,
    progress: ProgressFactory | None,
) -> str:
    fresh_chunks: dict[str, list[Chunk]] = {
        rel: chunk_article(article, settings.chunking) for rel, (article, _) in plan.fresh.items()
    }
    texts = [
        embedding_text(plan.fresh[rel][0].meta.title, c.text)
        for rel, chunks in fresh_chunks.items()
        for c in chunks
    ]
    callback = progress(len(texts)) if progress else None
    new_vectors = (
        embedder.embed(texts, progress=callback)
        if texts
        else np.zeros((0, embedder.dimension), dtype=np.float32)
    )
    plan.report.chunks_embedded = len(texts)
    dimension = int(new_vectors.shape[1]) if len(texts) else embedder.dimension

    records: dict[str, FileRecord] = {}
    build = store.begin(previous, settings.retrieval)
    try:
        offset = 0
        for rel in sorted(set(plan.keep) | set(plan.fresh)):
            if rel in plan.keep:
                records[rel] = plan.keep[rel]
                build.keep(records[rel])
                continue
            article, record = plan.fresh[rel]
            own = fresh_chunks[rel]
            records[rel] = replace(record, chunks=len(own))
            vectors = new_vectors[offset : offset + len(own)]
            build.put(FreshArticle(article.meta, article.text, records[rel], own, vectors))
            offset += len(own)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_id=embedder.model_id,
            dimension=dimension,
            chunking=chunking_key(settings),
            files=records,
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            chunks=sum(r.chunks for r in records.values()),
        )
        return build.commit(manifest)
    except BaseException:
        build.abort()
        raise


__all__ = ["IndexReport", "metadata_report", "stale_files", "tokenizer_changed", "update_index"]
