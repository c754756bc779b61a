"""Settings: defaults from ``config/settings.toml``, overrides from ``QA_BOT_*`` variables.

Settings are built once at the edge (CLI, bot) and passed down; nothing in the core reads the
environment. Secrets (the bot token) are read from the environment only: a token written into
the TOML file is refused rather than silently used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "QA_BOT_CONFIG"
DEFAULT_CONFIG = Path("config/settings.toml")
#: The longest question accepted, in characters, by every front (``max_question_chars``).
MAX_QUESTION_CHARS = 500


#: The passage reader trained by training/tune_reader.py, shipped inside the package.
PACKAGED_READER = Path(__file__).resolve().parent / "trained_reader"
#: Values of ``retrieval.reader`` (and ``query_adapter``, ``quote_model``) that turn it off.
READER_OFF = ("", "none", "off")
#: The query adapter trained by training/train_adapter.py, shipped inside the package.
PACKAGED_ADAPTER = Path(__file__).resolve().parent / "query_adapter.npz"
#: The quote model trained by training/train_quote.py, shipped inside the package.
PACKAGED_QUOTE_MODEL = Path(__file__).resolve().parent / "quote_model.json"
#: The reading of questions about the article itself, trained by training/train_about.py.
PACKAGED_ABOUT_MODEL = Path(__file__).resolve().parent / "about_model.json"


def _packaged_or_none(value: object, packaged: Path) -> object:
    """A setting naming a shipped model: "packaged" is its path, "none" (or "off", "") None."""
    if isinstance(value, str) and value.strip().lower() in READER_OFF:
        return None
    if isinstance(value, str) and value.strip().lower() == "packaged":
        return packaged
    return value


class SettingsError(ValueError):
    """The configuration is unusable; the message says which setting and why."""


class EmbeddingSettings(BaseModel):
    model: str = "all-MiniLM-L6-v2"
    #: "auto" answers questions with the ONNX export when one is in the index and builds with
    #: sentence-transformers; "sentence-transformers" or "onnx" force one backend everywhere.
    backend: Literal["auto", "sentence-transformers", "onnx"] = "auto"
    batch_size: int = Field(32, ge=1, le=4096)
    #: Torch/ONNX threads; 0 lets the library decide. The bot pins 1 so chats do not fight.
    threads: int = Field(0, ge=0, le=256)


class SeedsSettings(BaseModel):
    """How the seeds folder is read: only regular files inside it, unless told otherwise."""

    #: Read files that symlinks inside the seeds folder point to outside it. Off: whatever is
    #: indexed can be quoted to anyone who asks, so a link must not publish /etc or a home.
    follow_symlinks_outside: bool = False


class WatchSettings(BaseModel):
    """``qa-bot watch`` and ``qa-bot bot --watch``: how changes under seeds/ become builds."""

    #: Changes closer together than this are one batch (one build).
    debounce_ms: int = Field(500, ge=10, le=60_000)
    #: A changed file is read only once its size and mtime stayed the same for this long, so
    #: a file still being written (a download, a copy) is not read half-way.
    settle_seconds: float = Field(0.5, ge=0.0, le=60.0)
    #: Give up waiting for a file that keeps changing after this long, and build anyway (the
    #: next change triggers another build).
    settle_max_seconds: float = Field(30.0, ge=0.0, le=3600.0)
    #: Seconds a build waits for another running `qa-bot index` to finish.
    lock_wait_seconds: float = Field(60.0, ge=0.0)


class FeedsSettings(BaseModel):
    """``qa-bot feeds pull``: how feeds and their pages are fetched, politely and bounded."""

    #: Seconds for connecting and for each read; a slower server is reported and skipped.
    timeout_seconds: float = Field(15.0, gt=0.0, le=300.0)
    #: A feed or a page larger than this is not stored (a page is an article, not a download).
    max_bytes: int = Field(5_000_000, ge=1_000)
    max_redirects: int = Field(5, ge=0, le=20)
    #: New entries fetched per feed and pull (the newest first); the rest wait for the next.
    max_entries: int = Field(30, ge=1, le=1000)
    user_agent: str = "qa-bot/0.1 (news reader; fetches each page once)"
    #: Seconds between the starts of two requests to one site (feeds, robots.txt, pages).
    per_site_interval_seconds: float = Field(1.0, ge=0.0, le=600.0)


class FeedbackSettings(BaseModel):
    """Readers' votes on answers (👍 / 👎 in the bot, ``:good`` / ``:bad`` in ``qa-bot chat``)."""

    #: The feedback database (SQLite); default: ``feedback.sqlite`` in the index folder.
    path: Path | None = None
    #: Chat ids are stored only as a keyed hash with this secret, from
    #: ``QA_BOT_FEEDBACK__SALT`` only; without it a random one is made once and kept beside
    #: the database (``<path>.salt``, readable by its owner only).
    salt: SecretStr | None = None
    #: Complaints ``qa-bot feedback stats`` lists.
    recent: int = Field(5, ge=0, le=1000)


class ChunkingSettings(BaseModel):
    max_chars: int = Field(300, ge=40, le=4000)
    max_sentences: int = Field(3, ge=1, le=20)


class RetrievalSettings(BaseModel):
    top_k: int = Field(3, ge=1, le=20)
    candidates: int = Field(50, ge=5, le=2000)
    #: How the dense and the BM25 rankings are combined: "linear" adds the cosine and the
    #: max-normalized BM25 score, "rrf" adds reciprocal ranks (see benchmarks/README.md).
    fusion: Literal["linear", "rrf"] = "linear"
    #: Weight of the dense cosine in the fusion with BM25 (0: BM25 only, 1: dense only).
    dense_weight: float = Field(0.7, ge=0.0, le=1.0)
    #: The k of reciprocal rank fusion, 1 / (k + rank).
    rrf_k: int = Field(60, ge=1, le=1000)
    #: Bonus for the IDF-weighted share of the question's words a window contains (off: it
    #: did not help once quotes are built around the best sentence; benchmarks/README.md).
    coverage_weight: float = Field(0.0, ge=0.0, le=2.0)
    #: Bonus for the same share in a window's *first* sentence: of overlapping windows, the
    #: one that starts where the question is matched holds the answer most often.
    anchor_weight: float = Field(0.0, ge=0.0, le=2.0)
    #: Bonus for a passage holding what the question asks for (``qa_bot.answer_types``): a
    #: speed for "how fast", a duration for "how long", a date for "when"...; for "Who is X?",
    #: X's first mention or a title next to a name.
    answer_type_weight: float = Field(0.1, ge=0.0, le=2.0)
    #: Decline a question that names someone or something no article mentions ("What did
    #: Putin say about the convoy?" of articles that never name Putin).
    decline_unknown_names: bool = True
    #: Read a question word the index does not hold as the indexed word one typo away
    #: ("Lavrow" -> "Lavrov"; words of six letters or more).
    typo_tolerance: bool = True
    #: Answer only when coverage + evidence_dense_weight x cosine reaches min_evidence, where
    #: coverage is the IDF-weighted share of the question's words in the best single passage
    #: of the top three and cosine the best dense similarity (benchmarks/README.md); and
    #: never below min_dense.
    min_evidence: float = Field(1.35, ge=0.0, le=10.0)
    evidence_dense_weight: float = Field(2.0, ge=0.0, le=10.0)
    min_dense: float = Field(0.2, ge=-1.0, le=1.0)
    #: The same rule's weight and threshold for a question about the article itself, or one
    #: quoting a headline, under the learned ranker: fitted by training/fit_about_evidence.py.
    about_min_evidence: float = Field(0.65, ge=0.0, le=10.0)
    about_evidence_dense_weight: float = Field(1.02, ge=0.0, le=10.0)
    #: ... except that one passage holding every word of the question (short questions about
    #: a name: "Who is Churkin?") needs only this cosine.
    min_dense_all_words: float = Field(0.1, ge=-1.0, le=1.0)
    #: "learned": the packaged first-quote ranker and answer decision (qa_bot.ranker),
    #: trained by training/train_ranker.py; "hand": the hand-set fusion and evidence rule.
    ranker: Literal["learned", "hand"] = "learned"
    #: Another weights file for the learned ranker (default: the one shipped in the package).
    ranker_path: Path | None = None
    #: The learned ranker re-orders this many of the best hand-scored candidates, and the
    #: reader's adapter reads are picked among them (50, all the first stage's candidates,
    #: since the fifty-first round: benchmarks/README.md).
    rerank_depth: int = Field(50, ge=1, le=200)
    #: The learned decision answers when its probability reaches this.
    answer_threshold: float = Field(0.35, ge=0.0, le=1.0)
    #: Optional: any sentence-transformers CrossEncoder (name or path) that re-orders the best
    #: candidates by reading question and passage together; empty = none.
    reranker: str = ""
    #: A passage reader's folder, as training/tune_reader.py writes it (qa_bot.reader): it
    #: reads the learned ranker's best ``reader_depth`` passages with the question, and its
    #: logit joins the order and the answer decision. Exported at index time. "packaged" is
    #: the one shipped in the package (src/qa_bot/trained_reader); "none" or "" turns it off.
    reader: Path | None = PACKAGED_READER
    reader_depth: int = Field(3, ge=1, le=30)
    #: With the reader, the decision answers when its probability reaches this instead.
    reader_answer_threshold: float = Field(0.2, ge=0.0, le=1.0)
    #: A reader with a topic model declines, whatever its decision says, the questions the
    #: topic model finds about something the articles do not cover below this probability.
    reader_topic_threshold: float = Field(0.2, ge=0.0, le=1.0)
    #: A reader with a decision for the articles it was tuned on (``ReaderSpec.answer_tuned``)
    #: weighs a question whose passages read all come from them with it, and answers when its
    #: probability reaches ``reader_tuned_threshold``; off: always with the decision for
    #: articles it never read, at ``reader_answer_threshold``.
    reader_tuned_decision: bool = True
    reader_tuned_threshold: float = Field(0.15, ge=0.0, le=1.0)
    #: The first quote grows from the sentence holding the start of the reader's best answer
    #: span when that span beats "not there" by ``quote_span_margin`` (span readers only);
    #: otherwise, or when off, from the sentence sharing most of the question's words.
    quote_from_span: bool = True
    quote_span_margin: float = Field(0.0, ge=-50.0, le=50.0)
    #: The quote model (qa_bot.quote_choice), a file as training/train_quote.py writes it,
    #: "packaged" (shipped) or "none" (the hand order): which sentence the first quote starts
    #: from and which side it grows to.
    quote_model: Path | None = PACKAGED_QUOTE_MODEL
    #: The query adapter (qa_bot.query_adapter), a file as training/train_adapter.py writes it,
    #: "packaged" (shipped, for all-MiniLM-L6-v2) or "none": the reader also reads the
    #: ``adapter_reads`` ranked passages nearest the adapted question that it would not read.
    query_adapter: Path | None = PACKAGED_ADAPTER
    #: The reading of questions about the article itself (qa_bot.article_asked), a file as
    #: training/train_about.py writes it, "packaged" or "none" (every question is about the
    #: story): "when was the RT piece on the convoy published" is answered from the page's
    #: date line, outlet or headline, when the model gives that part ``about_threshold``.
    about_model: Path | None = PACKAGED_ABOUT_MODEL
    about_threshold: float = Field(0.5, ge=0.0, le=1.0)
    adapter_reads: int = Field(2, ge=0, le=30)
    #: Reading in two steps: the reader first reads the best ``reader_first_depth`` and the
    #: ``reader_first_adapter_reads`` nearest the adapted question (a part of what it reads in
    #: all), and reads the rest only when the decision over those is not settled: when the
    #: topic or the answer logit is within ``reader_settled_margin`` of its threshold
    #: (``training/fit_settled.py`` chooses all three). At ``reader_depth`` and ``adapter_reads`` or
    #: above, it reads everything at once.
    reader_first_depth: int = Field(1, ge=1, le=30)
    reader_first_adapter_reads: int = Field(1, ge=0, le=30)
    reader_settled_margin: float = Field(3.5, ge=0.0, le=50.0)
    #: Weight of a follow-up's carried-over terms in the BM25 query.
    context_term_weight: float = Field(0.5, ge=0.0, le=2.0)
    #: Bonus for passages of the articles a follow-up's previous answer cited.
    previous_topic_bonus: float = Field(0.05, ge=0.0, le=2.0)
    #: How many answer-type bonuses the window spelling out an asked-about acronym earns.
    spelt_out_bonus: float = Field(3.0, ge=0.0, le=20.0)
    max_answer_chars: int = Field(600, ge=100, le=10000)
    #: A further quote must score at least this share of the first one's score: several
    #: passages that support the answer are all cited, weak neighbours are not.
    further_quote_share: float = Field(0.8, ge=0.0, le=1.0)
    #: The best article's headline is quoted as the answer to a what/which/who question when it
    #: holds at least this share of the question's (IDF-weighted) words, and more than any
    #: sentence of the best window.
    headline_share: float = Field(0.75, ge=0.0, le=1.0)
    #: How much the words naming the question's speaker ("what did *Samantha Power* say")
    #: count when choosing the sentence to quote: news names a speaker once, often beside
    #: another sentence than the one that answers.
    speaker_name_weight: float = Field(0.5, ge=0.0, le=1.0)
    #: The first quote may grow past its window to the neighbouring sentences up to this.
    max_quote_chars: int = Field(500, ge=50, le=5000)
    #: A question asking who said something, answered by words whose speaker the quote does
    #: not name ("..., he said"): the sentence naming that speaker is quoted first, found at most
    #: this many sentences back in the article (0: never).
    speaker_lookback: int = Field(8, ge=0, le=100)
    #: Exact flat search up to this many chunks, an approximate index beyond.
    exact_search_limit: int = Field(200_000, ge=0)
    ann: Literal["hnsw", "ivf"] = "hnsw"
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_search: int = Field(256, ge=8, le=4096)
    ivf_nprobe: int = Field(64, ge=1, le=4096)

    @field_validator("reader", mode="before")
    @classmethod
    def _reader_folder(cls, value: object) -> object:
        """The words a setting file or the environment may use for the packaged reader or
        for none, as paths (anything else is a folder, relative to where qa-bot runs)."""
        return _packaged_or_none(value, PACKAGED_READER)

    @field_validator("quote_model", mode="before")
    @classmethod
    def _quote_model_file(cls, value: object) -> object:
        return _packaged_or_none(value, PACKAGED_QUOTE_MODEL)

    @field_validator("about_model", mode="before")
    @classmethod
    def _about_model_file(cls, value: object) -> object:
        return _packaged_or_none(value, PACKAGED_ABOUT_MODEL)

    @field_validator("query_adapter", mode="before")
    @classmethod
    def _adapter_file(cls, value: object) -> object:
        return _packaged_or_none(value, PACKAGED_ADAPTER)


class TelegramSettings(BaseModel):
    token: SecretStr | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(8443, ge=1, le=65535)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    allowed_user_ids: list[int] = Field(default_factory=list)
    allowed_chat_ids: list[int] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(10, ge=0)
    #: A stranger (outside the allowlists) is told no at most once per chat in this time.
    refusal_interval_seconds: float = Field(3600, ge=0)
    #: A reply is retried (flood control, network errors) until it is delivered or this many
    #: seconds have passed since the first try.
    send_deadline_seconds: float = Field(60, ge=1, le=3600)
    #: How long to wait for the Bot API's answer to a request. A post that timed out is not
    #: sent again (it may have arrived), and no apology follows it.
    read_timeout_seconds: float = Field(5, gt=0, le=300)
    workers: int = Field(2, ge=1, le=64)
    #: Two questions /start suggests; when empty, they are built from article titles.
    example_questions: list[str] = Field(default_factory=list)
    #: ``qa-bot bot`` pulls the feeds (``qa-bot feeds``) this often and indexes new pages;
    #: 0 = never (pull them with the command, or by cron).
    feeds_interval_minutes: float = Field(0, ge=0, le=7 * 24 * 60)


class ConversationSettings(BaseModel):
    ttl_seconds: int = Field(900, ge=0)
    max_turns: int = Field(3, ge=1, le=20)
    #: A follow-up that brings back the previous quotes keeps them when the learned order gives
    #: the first this probability of answering it; else it is asked again without them.
    keep_quoted_score: float = Field(0.9, ge=0.0, le=1.0)
    #: The bot keeps its chats' state (context, /outlet and /dates, the data behind buttons)
    #: in this file between restarts (python-telegram-bot's PicklePersistence); off by default.
    persist_path: Path | None = None


class StoreSettings(BaseModel):
    """Where the index lives: the index folder (FAISS + BM25, the default) or Milvus."""

    backend: Literal["faiss", "milvus"] = "faiss"
    #: A milvus-lite data folder ending in ``.db`` (started in-process), or the address of a
    #: Milvus server: ``http://host:19530`` (Standalone, or the proxy of Milvus Distributed).
    milvus_uri: str = "milvus.db"
    #: ``user:password`` or an API key; from ``QA_BOT_STORE__MILVUS_TOKEN`` only.
    milvus_token: SecretStr | None = None
    milvus_database: str = "default"
    #: Prefix of the collections this index uses (several indexes can share one server).
    milvus_collection: str = Field("qa_bot", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,150}$")
    #: The dense index: HNSW (``retrieval.hnsw_m`` / ``hnsw_ef_search``), HNSW_SQ (8-bit
    #: scalar quantised vectors in the graph), FLAT (exact), IVF_FLAT or IVF_SQ8
    #: (``retrieval.ivf_nprobe``), or AUTOINDEX (the server decides; Zilliz Cloud).
    milvus_index: Literal["HNSW", "HNSW_SQ", "FLAT", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX"] = "HNSW"
    #: Shards (parallel write channels) of a new collection, and in-memory replicas (query
    #: nodes serving each segment) when it is loaded: README, "Running on a cluster".
    milvus_shards: int = Field(1, ge=1, le=64)
    milvus_replicas: int = Field(1, ge=1, le=16)
    #: Read consistency of questions. "Strong" sees every committed build at once; "Bounded"
    #: answers faster on a busy cluster and needs ``milvus_settle_seconds`` at least as long
    #: as the server's staleness bound (``common.gracefulTime``, 5 s by default).
    milvus_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = "Strong"
    #: A build waits this long after its last write before switching generations.
    milvus_settle_seconds: float = Field(0.0, ge=0.0, le=600.0)
    #: Seconds to wait for the server on each call.
    milvus_timeout: float = Field(30.0, gt=0.0, le=3600.0)
    #: A build lock older than this (a crashed ``qa-bot index``) may be taken over.
    milvus_lock_ttl: int = Field(3600, ge=10)
    #: Rows written per insert call.
    milvus_batch_rows: int = Field(500, ge=1, le=100_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QA_BOT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("embeddings")
    #: Paths in answers are shown relative to this folder.
    root_dir: Path = Path(".")
    metadata_file: str = "metadata.toml"
    max_file_bytes: int = Field(20_000_000, ge=1)
    seeds: SeedsSettings = SeedsSettings()
    watch: WatchSettings = WatchSettings()
    feeds: FeedsSettings = FeedsSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    max_question_chars: int = Field(MAX_QUESTION_CHARS, ge=10, le=4000)
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    telegram: TelegramSettings = TelegramSettings()
    conversation: ConversationSettings = ConversationSettings()
    store: StoreSettings = StoreSettings()

    @field_validator("seeds_dir", "index_dir", "root_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def feedback_path(self) -> Path:
        """Where readers' votes are kept: ``feedback.path``, else in the index folder."""
        return (self.feedback.path or self.index_dir / "feedback.sqlite").expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(_SecretFreeToml(settings_cls, toml_file))
        return tuple(sources)


class _SecretFreeToml(TomlConfigSettingsSource):
    """The TOML defaults, refusing secrets: they belong in the environment only."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path):
        super().__init__(settings_cls, toml_file=path)
        for section, secret in (
            ("telegram", "token"),
            ("telegram", "webhook_secret"),
            ("store", "milvus_token"),
            ("feedback", "salt"),
        ):
            table = self.toml_data.get(section, {})
            if isinstance(table, dict) and table.get(secret):
                raise SettingsError(
                    f"{path}: {section}.{secret} must not be stored in a file; set "
                    f"QA_BOT_{section.upper()}__{secret.upper()} in the environment instead"
                )


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(f"{CONFIG_ENV}={explicit}: no such settings file")
        return path
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once, at a front's edge; ``overrides`` win over everything else."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError:
        raise
    except Exception as exc:  # pydantic's ValidationError, TOML syntax errors
        raise SettingsError(f"invalid settings: {exc}") from exc
