"""A real OpenAI-compatible chat server on 127.0.0.1 for tests (a free port, its own thread)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_reply(content: str) -> dict:
    """The body of a ``/chat/completions`` answer with one message."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


class ChatServer:
    """Answers each POST with ``self.respond(body, authorization) -> (status, payload, headers)``;
    use as a context manager, with ``url`` as the client's base URL."""

    def respond(self, body: dict, authorization: str | None) -> tuple[int, dict, dict]:
        raise NotImplementedError

    def __init__(self):
        server = self

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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
