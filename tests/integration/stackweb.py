"""The `web` of test_stacks.py's WordPress-shaped stack, run as a process
image (`/usr/bin/python3 stackweb.py PORT URL`): an HTTP server on
0.0.0.0:PORT that answers every GET by fetching URL (the `db` service, by
name) and replying "HOSTNAME <- BODY", or 502 with the error. Standard
library only."""
import http.server
import socket
import sys
import urllib.request


def main():
    port, url = int(sys.argv[1]), sys.argv[2]
    host = socket.gethostname()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    body, code = f"{host} <- {r.read().decode()}".encode(), 200
            except OSError as e:
                body, code = f"{host} <- error: {e}".encode(), 502
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
