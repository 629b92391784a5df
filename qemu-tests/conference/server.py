# The test conference's HTTPS server: the page, a log of what the page reports,
# and /janus proxied to Janus' HTTP API on loopback (same origin for the page).
import http.server, json, ssl, sys, time, urllib.request
address, port, cert, key, page, log = sys.argv[1:7]
# The test writes an attempt's key here when it must not depend on the keyboard.
NEXT = log + ".next"
JANUS = "http://127.0.0.1:8088"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, kind="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def proxy(self, body):
        request = urllib.request.Request(JANUS + self.path, data=body, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                self.reply(answer.status, answer.read(), "application/json")
        except Exception as err:
            self.reply(502, str(err).encode())

    def note(self, what, detail):
        with open(log, "a") as f:
            f.write(json.dumps({"t": time.time(), "client": self.client_address[0],
                                "what": what, "detail": detail}) + "\n")

    def do_GET(self):
        if self.path.startswith("/janus"):
            return self.proxy(None)
        if self.path == "/next":
            try:
                body = open(NEXT, "rb").read()
            except OSError:
                body = b""
            return self.reply(200, body)
        self.note("get", self.path)
        if self.path in ("/", "/index.html"):
            return self.reply(200, open(page, "rb").read(), "text/html; charset=utf-8")
        self.reply(200, b"test conference\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/janus"):
            return self.proxy(body)
        if self.path == "/report":
            report = json.loads(body)
            self.note(report.get("what", "?"), report.get("detail", ""))
        self.reply(200, b"ok\n")

    def log_message(self, fmt, *args):
        pass

server = http.server.ThreadingHTTPServer((address, int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
