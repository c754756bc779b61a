"""A Telegram Bot API fake on 127.0.0.1, strict about the rules the real server enforces.

The bot under test talks to it through python-telegram-bot exactly as it would to Telegram
(``base_url = fake.base_url``). The test pushes updates (``send``, ``press``), which the bot's
``getUpdates`` long poll picks up, and waits for what the bot did (``wait_for``, ``replies``).

Enforced like the real API: the token in the path; known chats only; message text of 1..4096
UTF-16 code units *after* entity parsing; Telegram HTML (only its tags, only ``&lt; &gt; &amp;
&quot;`` and numeric entities, balanced tags) or 400 "can't parse entities"; callback data of
1..64 bytes; replies to messages that exist (unless ``allow_sending_without_reply``); valid chat
actions; callback queries answered at most once; "message is not modified" on no-op edits. It
is stricter than Telegram in one place: a bare ``&`` or ``>`` in text is refused, since
escaping them is the sender's job.

Faults can be injected: ``fail_next("sendMessage", retry_after=1)`` answers 429 once;
``drop_next("sendMessage")`` closes the connection without an answer (a network error).

Forms (``application/x-www-form-urlencoded``, what python-telegram-bot sends, with non-string
fields JSON-encoded) and JSON bodies are both accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "entities",
    "allowed_updates",
    "commands",
    "scope",
}
_INT_FIELDS = {"offset", "limit", "timeout", "message_id", "cache_time", "message_thread_id"}
_BOOL_FIELDS = {"show_alert", "disable_notification", "drop_pending_updates", "protect_content"}


class APIError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad_request(description: str) -> APIError:
    return APIError(400, f"Bad Request: {description}")


# --- Telegram HTML ----------------------------------------------------------------------------


class HTMLParseError(ValueError):
    pass


_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*?)?)\s*(/?)>")
_ATTR = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot);|#(\d{1,7});|#[xX]([0-9a-fA-F]{1,6});)")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _attrs(raw: str, where: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    raw = raw.strip()
    while pos < len(raw):
        m = _ATTR.match(raw, pos)
        if not m or m.end() == pos:
            raise HTMLParseError(f"Invalid attribute {where}")
        value = m.group(2) or ""
        if value[:1] in "\"'":
            value = value[1:-1]
        attrs[m.group(1).lower()] = html.unescape(value)
        pos = m.end()
    return attrs


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: the plain text and its entities, or ``HTMLParseError``.

    Offsets and lengths of entities are in UTF-16 code units, as in the Bot API.
    """
    text: list[str] = []
    length = 0  # UTF-16 units of the text so far
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        ch = source[i]
        where = f"at byte offset {len(source[:i].encode())}"
        if ch == "<":
            m = _TAG.match(source, i)
            if not m:
                raise HTMLParseError(f"Unclosed start tag {where}")
            closing, name, raw_attrs, selfclose = (
                m.group(1),
                m.group(2).lower(),
                m.group(3),
                m.group(4),
            )
            if selfclose:
                raise HTMLParseError(f'Unsupported start tag "{name}" {where}')
            if closing:
                if raw_attrs.strip():
                    raise HTMLParseError(f"Unexpected end tag attributes {where}")
                if not stack:
                    raise HTMLParseError(f'Unexpected end tag "{name}" {where}')
                open_name, start, attrs = stack.pop()
                if open_name != name:
                    raise HTMLParseError(
                        f'Unmatched end tag {where}, expected "</{open_name}>", found "</{name}>"'
                    )
                if length > start:
                    entities.append(_entity(open_name, start, length - start, attrs))
            else:
                if name not in _ENTITY_TYPES:
                    raise HTMLParseError(f'Unsupported start tag "{name}" {where}')
                attrs = _attrs(raw_attrs, where)
                _check_tag(name, attrs, [s[0] for s in stack], where)
                stack.append((name, length, attrs))
            i = m.end()
            continue
        if ch == "&":
            m = _ENTITY.match(source, i)
            if not m:
                raise HTMLParseError(f"Character '&' must be escaped as &amp; {where}")
            if m.group(1):
                decoded = _NAMED[m.group(1)]
            else:
                code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
                if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise HTMLParseError(f"Invalid numeric entity {where}")
                decoded = chr(code)
            text.append(decoded)
            length += _utf16(decoded)
            i = m.end()
            continue
        if ch == ">":
            raise HTMLParseError(f"Character '>' must be escaped as &gt; {where}")
        text.append(ch)
        length += _utf16(ch)
        i += 1
    if stack:
        raise HTMLParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(text), entities


def _check_tag(name: str, attrs: dict[str, str], open_tags: list[str], where: str) -> None:
    allowed: set[str] = set()
    if name == "a":
        allowed = {"href"}
        if not attrs.get("href"):
            raise HTMLParseError(f"Tag a must have an href attribute {where}")
        if "a" in open_tags:
            raise HTMLParseError(f"Nested links are not allowed {where}")
    elif name == "span":
        allowed = {"class"}
        if attrs.get("class") != "tg-spoiler":
            raise HTMLParseError(f'Tag "span" must have class "tg-spoiler" {where}')
    elif name == "blockquote":
        allowed = {"expandable"}
        if "blockquote" in open_tags:
            raise HTMLParseError(f"Blockquote entities can't be nested {where}")
    elif name == "code":
        allowed = {"class"}
    unknown = set(attrs) - allowed
    if unknown:
        raise HTMLParseError(f'Unsupported attribute "{sorted(unknown)[0]}" {where}')
    if (
        open_tags
        and open_tags[-1] in {"code", "pre"}
        and not (name == "code" and open_tags[-1] == "pre")
    ):
        raise HTMLParseError(f'Entities can\'t be nested inside "{open_tags[-1]}" {where}')


def _entity(name: str, offset: int, length: int, attrs: dict[str, str]) -> dict[str, Any]:
    kind = _ENTITY_TYPES[name]
    if name == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if name == "a":
        entity["url"] = attrs["href"]
    return entity


def check_message_text(text: Any, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """What ``sendMessage``/``editMessageText`` accept, as the plain text and its entities."""
    if not isinstance(text, str) or not text.strip():
        raise bad_request("message text is empty")
    entities: list[dict[str, Any]] = []
    if parse_mode is not None:
        if parse_mode.lower() != "html":
            raise bad_request(f"unsupported parse_mode {parse_mode!r} in this fake")
        try:
            text, entities = parse_html(text)
        except HTMLParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    if not text.strip():
        raise bad_request("message text is empty")
    if _utf16(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


# --- the server -------------------------------------------------------------------------------


@dataclass
class Call:
    """One request the bot made, and how the fake answered it."""

    method: str
    params: dict[str, Any]
    ok: bool
    result: Any = None
    error: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    method: str
    code: int = 0
    description: str = ""
    retry_after: int | None = None
    drop: bool = False
    #: Carry the call out, then wait this long before answering (a reply that times out).
    delay: float = 0.0


_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}\b")


class BotAPIFake:
    """The fake Bot API server; use as a context manager or call ``start``/``stop``."""

    def __init__(
        self,
        token: str = "123456:TEST-fake-token-ABCdef",
        *,
        bot_id: int = 123456,
        username: str = "qa_test_bot",
    ):
        self.token = token
        self.bot = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "QA test bot",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.commands: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._callbacks: dict[str, bool] = {}  # id -> answered
        self._faults: list[_Fault] = []
        self._webhook: dict[str, Any] | None = None
        self._routes: dict[str, str] = {}
        #: (update_id, HTTP status) of every webhook delivery, in order.
        self.deliveries: list[tuple[int, int]] = []
        self._closing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What the bot's ``base_url`` setting should be."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> BotAPIFake:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for one (0.5 s by default), in every test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="botapi-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> BotAPIFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the world the bot sees --

    @staticmethod
    def user(user_id: int, first_name: str = "Ann", username: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        return user

    @staticmethod
    def private_chat(user: dict[str, Any]) -> dict[str, Any]:
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}

    @staticmethod
    def group(chat_id: int, title: str = "Newsroom") -> dict[str, Any]:
        assert chat_id < 0, "group ids are negative"
        return {"id": chat_id, "type": "supergroup", "title": title}

    def send(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        text: str | None,
        *,
        reply_to: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A user writes ``text`` in ``chat`` (or sends ``fields``, e.g. ``location={...}``);
        returns the message as the bot will see it."""
        with self._cond:
            self._chats.setdefault(chat["id"], dict(chat))
            message = {
                "message_id": self._new_message_id(chat["id"]),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                **fields,
            }
            if text is not None:
                message["text"] = text
                entities = _entities_in(text)
                if entities:
                    message["entities"] = entities
            if reply_to is not None:
                message["reply_to_message"] = _shallow(reply_to)
            self._messages[(chat["id"], message["message_id"])] = message
            self._push({"message": message})
            return message

    def press(self, message: dict[str, Any], data: str, user: dict[str, Any]) -> str:
        """A user taps the inline button with ``data`` under ``message``; returns the query id."""
        with self._cond:
            current = self._messages[(message["chat"]["id"], message["message_id"])]
            buttons = [
                b["callback_data"]
                for row in current.get("reply_markup", {}).get("inline_keyboard", [])
                for b in row
                if "callback_data" in b
            ]
            assert data in buttons, f"no button {data!r} under that message: {buttons}"
            query_id = str(next(self._callback_ids))
            self._callbacks[query_id] = False
            self._push(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": user,
                        "message": _shallow(current),
                        "chat_instance": f"ci{message['chat']['id']}",
                        "data": data,
                    }
                }
            )
            return query_id

    def add_message(self, message: dict[str, Any]) -> None:
        """Make a message (e.g. one an earlier bot process sent) exist in its chat."""
        with self._cond:
            chat = message["chat"]
            self._chats.setdefault(chat["id"], dict(chat))
            self._messages[(chat["id"], message["message_id"])] = dict(message)
            self._next_message_id[chat["id"]] = max(
                self._next_message_id.get(chat["id"], 1), message["message_id"] + 1
            )

    def route_webhook(self, public_url: str, local_url: str) -> None:
        """Deliver webhook posts meant for ``public_url`` to ``local_url`` (the bot's server on
        127.0.0.1), as a reverse proxy in front of it would."""
        self._routes[public_url] = local_url

    def fail_next(
        self,
        method: str,
        *,
        retry_after: int | None = None,
        code: int = 429,
        description: str | None = None,
    ) -> None:
        """Answer the next call of ``method`` with an error (429 flood control by default)."""
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}" if code == 429 else "Bad Request"
            )
        with self._cond:
            self._faults.append(_Fault(method.lower(), code, description, retry_after))

    def drop_next(self, method: str) -> None:
        """Close the connection of the next call of ``method`` without answering."""
        with self._cond:
            self._faults.append(_Fault(method.lower(), drop=True))

    def delay_next(self, method: str, seconds: float) -> None:
        """Carry out the next call of ``method`` (a message is sent), but answer only after
        ``seconds``: longer than the client waits, it times out although it worked."""
        with self._cond:
            self._faults.append(_Fault(method.lower(), delay=seconds))

    def press_detached(self, data: str, user: dict[str, Any]) -> str:
        """A button press with no message attached (an inline message's button, or a message
        too old for Telegram to include); returns the query id."""
        with self._cond:
            query_id = str(next(self._callback_ids))
            self._callbacks[query_id] = False
            self._push(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": user,
                        "inline_message_id": f"inline-{query_id}",
                        "chat_instance": "ci-inline",
                        "data": data,
                    }
                }
            )
            return query_id

    # -- what the bot did --

    def calls_of(self, method: str, *, after: int = 0) -> list[Call]:
        with self._cond:
            return [c for c in self.calls[after:] if c.method.lower() == method.lower()]

    def mark(self) -> int:
        """A position in the call log: pass it as ``after`` to look only at later calls."""
        with self._cond:
            return len(self.calls)

    def sent(self, chat_id: int, *, after: int = 0) -> list[dict[str, Any]]:
        """The messages the bot sent to ``chat_id`` (successful sendMessage calls)."""
        return [
            c.result
            for c in self.calls_of("sendMessage", after=after)
            if c.ok and c.result["chat"]["id"] == chat_id
        ]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message as it is now (after edits)."""
        with self._cond:
            return dict(self._messages[(chat_id, message_id)])

    def answered(self, query_id: str) -> bool:
        with self._cond:
            return self._callbacks.get(query_id, False)

    async def wait_for(
        self,
        predicate: Callable[[Call], bool],
        *,
        after: int = 0,
        timeout: float = 15.0,
    ) -> Call:
        """The first call after ``after`` matching ``predicate``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                for call in self.calls[after:]:
                    if predicate(call):
                        return call
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no matching call within {timeout} s; calls: {self.summary(after)}"
                )
            await asyncio.sleep(0.005)

    async def replies(
        self,
        chat_id: int,
        *,
        after: int = 0,
        count: int = 1,
        timeout: float = 15.0,
        settle: float = 0.1,
    ) -> list[dict[str, Any]]:
        """Wait until the bot has sent ``count`` messages to ``chat_id``, then a little longer
        (``settle``) to catch any it should not have sent."""
        deadline = time.monotonic() + timeout
        while len(self.sent(chat_id, after=after)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"expected {count} message(s) to chat {chat_id}; calls: {self.summary(after)}"
                )
            await asyncio.sleep(0.005)
        await asyncio.sleep(settle)
        return self.sent(chat_id, after=after)

    def summary(self, after: int = 0) -> list[str]:
        with self._cond:
            return [
                f"{c.method}{'' if c.ok else ' -> ' + str(c.error)}"
                for c in self.calls[after:]
                if c.method.lower() != "getupdates"
            ]

    # -- internals --

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        if self._webhook is not None:
            threading.Thread(target=self._deliver, args=(update,), daemon=True).start()
            return
        self._updates.append(update)
        self._cond.notify_all()

    def _deliver(self, update: dict[str, Any]) -> None:
        """POST an update to the webhook, as Telegram does, with the secret token header."""
        import urllib.error
        import urllib.request

        assert self._webhook is not None
        url = self._routes.get(self._webhook["url"], self._webhook["url"])
        request = urllib.request.Request(
            url, data=json.dumps(update).encode(), headers={"Content-Type": "application/json"}
        )
        if self._webhook.get("secret_token"):
            request.add_header("X-Telegram-Bot-Api-Secret-Token", self._webhook["secret_token"])
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with self._cond:
            self.deliveries.append((update["update_id"], status))

    def _new_message_id(self, chat_id: int) -> int:
        n = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = n + 1
        return n

    def _fault(self, method: str) -> _Fault | None:
        with self._cond:
            for i, fault in enumerate(self._faults):
                if fault.method == method.lower():
                    return self._faults.pop(i)
        return None

    def handle(self, method: str, params: dict[str, Any]) -> Any:
        """Run one API method; raises ``APIError`` like the real server answers errors."""
        name = method.lower()
        if name == "getupdates":
            return self._get_updates(params)
        handler = getattr(self, f"_m_{name}", None)
        if handler is None:
            raise APIError(404, "Not Found")
        with self._cond:
            # A copy, so that later edits do not rewrite what the call log says was sent.
            return json.loads(json.dumps(handler(params)))

    def record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._webhook is not None:
                raise APIError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            while True:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or self._closing:
                    return self._updates[:limit]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(min(remaining, 0.5))

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        try:
            chat = self._chats[int(chat_id)]
        except (KeyError, TypeError, ValueError):
            raise bad_request("chat not found") from None
        return chat

    def _bot_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        message = self._messages.get((chat["id"], int(params.get("message_id") or 0)))
        if message is None:
            raise bad_request("message to edit not found")
        if message["from"]["id"] != self.bot["id"]:
            raise bad_request("message can't be edited")
        return message

    # -- methods --

    def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot

    def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        self._webhook = None
        return True

    def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._m_deletewebhook(params)
        if not url.startswith("https://"):
            raise bad_request("bad webhook: HTTPS url must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        self._webhook = {"url": url, "secret_token": secret}
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        url = self._webhook["url"] if self._webhook else ""
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands must be a list of at most 100 commands")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise bad_request("command description must be 1-256 characters")
        self.commands = commands
        return True

    def _m_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    def _m_getchat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_sendchataction(self, params: dict[str, Any]) -> bool:
        self._chat(params.get("chat_id"))
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id"))
        text, entities = check_message_text(params.get("text"), params.get("parse_mode"))
        markup = _check_markup(params.get("reply_markup"))
        message: dict[str, Any] = {
            "message_id": 0,
            "from": {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        reply = params.get("reply_parameters")
        if reply is not None:
            if not isinstance(reply, dict) or "message_id" not in reply:
                raise bad_request("invalid reply parameters")
            target_chat = int(reply.get("chat_id", chat["id"]))
            target = self._messages.get((target_chat, int(reply["message_id"])))
            if target is not None:
                message["reply_to_message"] = _shallow(target)
            elif not reply.get("allow_sending_without_reply"):
                raise bad_request("message to be replied not found")
        if markup is not None:
            message["reply_markup"] = markup
        message["message_id"] = self._new_message_id(chat["id"])
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._bot_message(params)
        text, entities = check_message_text(params.get("text"), params.get("parse_mode"))
        markup = _check_markup(params.get("reply_markup"))
        if (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.update(text=text, edit_date=int(time.time()))
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        return message

    def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._bot_message(params)
        markup = _check_markup(params.get("reply_markup"))
        if markup == message.get("reply_markup") or (
            markup is None and "reply_markup" not in message
        ):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if self._callbacks.get(query_id, True):
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        self._callbacks[query_id] = True
        return True


def _check_markup(markup: Any) -> dict[str, Any] | None:
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        raise bad_request("unsupported reply markup in this fake")
    for row in rows:
        for button in row:
            if not str(button.get("text", "")).strip():
                raise bad_request("BUTTON_TEXT_INVALID")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup


def _shallow(message: dict[str, Any]) -> dict[str, Any]:
    """A message as it appears nested in another one (Telegram does not nest replies twice)."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _entities_in(text: str) -> list[dict[str, Any]]:
    """The entities Telegram detects in a user's plain text: a leading command, mentions."""
    entities = []
    m = _COMMAND.match(text)
    if m:
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16(m.group())})
    for m in _MENTION.finditer(text):
        entities.append(
            {"type": "mention", "offset": _utf16(text[: m.start()]), "length": _utf16(m.group())}
        )
    return entities


def _coerce(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str):
            if key in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise bad_request(f"can't parse {key} JSON object") from None
            elif key in _INT_FIELDS or key == "chat_id":
                try:
                    value = int(value)
                except ValueError:
                    if key != "chat_id":
                        raise bad_request(f"wrong parameter {key}") from None
            elif key in _BOOL_FIELDS:
                value = value.lower() in {"true", "1"}
        out[key] = value
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: BotAPIFake

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", url.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not m:
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = m.groups()
        if token != fake.token:
            self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        params: dict[str, Any] = dict(parse_qsl(url.query))
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if kind == "application/json" and body:
                params.update(json.loads(body))
            elif kind == "application/x-www-form-urlencoded":
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            elif body:
                raise bad_request(f"unsupported content type {kind!r} in this fake")
            params = _coerce(params)
        except APIError as exc:
            self._error(method, params, exc)
            return
        fault = fake._fault(method)
        if fault is not None and fault.drop:
            fake.record(Call(method, params, False, error="connection dropped"))
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault is not None and fault.delay:
            result = fake.handle(method, params)
            fake.record(Call(method, params, True, result=result))
            time.sleep(fault.delay)
            self._reply(200, {"ok": True, "result": result})
            return
        if fault is not None:
            extra = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
            self._error(method, params, APIError(fault.code, fault.description, extra))
            return
        try:
            result = fake.handle(method, params)
        except APIError as exc:
            self._error(method, params, exc)
            return
        if method.lower() != "getupdates" or result:
            fake.record(Call(method, params, True, result=result))
        self._reply(200, {"ok": True, "result": result})

    def _error(self, method: str, params: dict[str, Any], exc: APIError) -> None:
        self.fake.record(Call(method, params, False, error=exc.description))
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": exc.code,
            "description": exc.description,
        }
        if exc.parameters:
            payload["parameters"] = exc.parameters
        self._reply(exc.code, payload)

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # The client may have given up (a long poll cut short when the bot stops).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)
