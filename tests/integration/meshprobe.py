"""What the routing-mesh tests run (standard library only).

  http PORT            (a task) HTTP server on 0.0.0.0:PORT answering every
                       GET with its hostname
  udpecho PORT         (a task) UDP server on 0.0.0.0:PORT answering every
                       datagram with "HOSTNAME:" + the datagram
  get IP PORT N        (the client) N GETs of http://IP:PORT/ (a new
                       connection each, 2 s timeout): one JSON list of the
                       bodies, "error: ..." for a failed one
  udp IP PORT N        (the client) N datagrams, each answered within 2 s:
                       JSON list of the answers or "error: ..."
"""
import http.server
import json
import socket
import sys
import urllib.request


def http_serve(port):
    host = socket.gethostname().encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(host)))
            self.end_headers()
            self.wfile.write(host)

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()


def udp_echo(port):
    host = socket.gethostname().encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(host + b":" + data, peer)


def get(ip, port, n):
    out = []
    for _ in range(n):
        try:
            with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=2) as r:
                out.append(r.read().decode())
        except Exception as e:  # noqa: BLE001 - reported to the test
            out.append(f"error: {e}")
    print(json.dumps(out))


def udp(ip, port, n):
    out = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        try:
            s.sendto(f"ping{i}".encode(), (ip, port))
            out.append(s.recvfrom(2048)[0].decode())
        except Exception as e:  # noqa: BLE001
            out.append(f"error: {e}")
        finally:
            s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "http":
        http_serve(int(sys.argv[2]))
    elif cmd == "udpecho":
        udp_echo(int(sys.argv[2]))
    elif cmd == "get":
        get(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "udp":
        udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
