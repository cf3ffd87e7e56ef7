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
