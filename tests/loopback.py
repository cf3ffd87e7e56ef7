"""A real OpenAI-compatible chat server on 127.0.0.1 for tests (a free port, its own thread)."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_reply(content: str | None, *, tool_calls: list[dict] | None = None, finish_reason: str = "stop",
               usage: tuple[int, int] | None = None, model: str | None = None,
               cache: tuple[int, int] | None = None) -> dict:
    """The body of a ``/chat/completions`` answer with one message; ``tool_calls`` are
    ``{"id", "name", "arguments"}`` mappings (``arguments`` a JSON text or a mapping to encode),
    ``usage`` is (prompt tokens, completion tokens), ``cache`` (prompt tokens read from the
    prompt cache, written to it) as OpenAI reports them in ``usage.prompt_tokens_details``."""
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": call.get("id", f"call_{i}"), "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"] if isinstance(call["arguments"], str)
                          else json.dumps(call["arguments"])}}
            for i, call in enumerate(tool_calls)]
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        if cache is not None:
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": cache[0], "cache_write_tokens": cache[1]}
    if model is not None:
        body["model"] = model
    return body


def words(chat: list[dict]) -> int:
    """The whitespace-separated words of a chat's text contents: the loopback's token count."""
    return sum(len(m["content"].split()) for m in chat if isinstance(m.get("content"), str))


class _Server(ThreadingHTTPServer):
    """A listen backlog for many clients at once (the default of 5 drops connections,
    which their clients retry a second later)."""

    request_queue_size = 256


class ChatServer:
    """Answers each POST with ``self.respond(body, authorization) -> (status, payload, headers)``;
    use as a context manager, with ``url`` as the client's base URL.

    Given ``reply``, a function from a chat (the request's messages) to a reply, the server
    answers every chat by it: a string is the assistant's text (``finish_reason`` "stop"),
    a list of ``{"name", "arguments"[, "id"]}`` mappings are tool calls (``finish_reason``
    "tool_calls"). Usage counts words (:func:`words`), the model is the request's, and
    ``bodies`` keeps every request body (with its ``tools``)."""

    def respond(self, body: dict, authorization: str | None) -> tuple[int, dict, dict]:
        if self.reply is None:
            raise NotImplementedError("give a reply function or override respond")
        chat = body["messages"]
        with self.lock:
            self.bodies.append(body)
        answer = self.reply(chat)
        if isinstance(answer, str):
            return 200, chat_reply(answer, usage=(words(chat), len(answer.split())), model=body.get("model")), {}
        return 200, chat_reply(None, tool_calls=answer, finish_reason="tool_calls", usage=(words(chat), len(answer)),
                               model=body.get("model")), {}

    def __init__(self, reply=None):
        server = self
        self.reply = reply
        self.bodies: list[dict] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload, headers = server.respond(body, self.headers.get("Authorization"))
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                    **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class HangingServer(ChatServer):
    """Counts the POSTs it receives and answers none of them until it stops (by then its
    clients may have hung up, which is not an error)."""

    def __init__(self):
        super().__init__()
        self.requests = 0
        self.seen = threading.Condition()
        self.released = threading.Event()
        self.httpd.handle_error = lambda request, address: None

    def respond(self, body, authorization):
        with self.seen:
            self.requests += 1
            self.seen.notify_all()
        self.released.wait(60)
        return 503, {"error": {"message": "stopped"}}, {}

    def wait_for(self, n: int, timeout: float) -> bool:
        """Whether ``n`` requests arrived within ``timeout`` seconds."""
        with self.seen:
            return self.seen.wait_for(lambda: self.requests >= n, timeout)

    def __exit__(self, *exc):
        self.released.set()
        super().__exit__(*exc)


class EndlessServer(ChatServer):
    """Answers each POST with status 200 and a body without length that never ends;
    ``sent`` counts the bytes it wrote before the client hung up."""

    def __init__(self):
        super().__init__()
        server = self
        self.sent = 0
        self.stopped = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    self.wfile.write(b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "')
                    while not server.stopped.is_set():
                        self.wfile.write(chunk)
                        server.sent += len(chunk)
                except OSError:
                    pass

        self.httpd.RequestHandlerClass = Handler

    def __exit__(self, *exc):
        self.stopped.set()
        super().__exit__(*exc)


class DripServer(ChatServer):
    """Answers each POST with a valid reply sent one byte every ``interval`` seconds (a
    read never waits long, the whole reply takes minutes); ``sent`` counts the bytes."""

    def __init__(self, interval: float = 0.2):
        super().__init__()
        server = self
        self.sent = 0
        self.stopped = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                data = json.dumps(chat_reply("x" * 1000)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(len(data)):
                        if server.stopped.wait(interval):
                            return
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        server.sent += 1
                except OSError:
                    pass

        self.httpd.RequestHandlerClass = Handler

    def __exit__(self, *exc):
        self.stopped.set()
        super().__exit__(*exc)
