# The test conference's HTTPS server: the page, a log of what the page reports,
# and /janus proxied to Janus' HTTP API on loopback (same origin for the page).
import http.server, json, os, ssl, sys, time, urllib.request
address, port, cert, key, page, log = sys.argv[1:7]
# The test writes an attempt's key here when it must not depend on the keyboard.
NEXT = log + ".next"
# While this file exists, the browser's next requests for the page get no answer:
# as many as the file says (one when it is empty); the file is removed after the
# last. The kiosk's watchdog must notice and load the page anew.
HOLD = log + ".hold"
# How long a held request is kept open at most.
HOLD_SECONDS = 300
JANUS = "http://127.0.0.1:8088"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Seconds a connection may stay quiet, handshake included.
    timeout = 120

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

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
        if self.path in ("/", "/index.html") and self.hold():
            return
        if self.path in ("/", "/index.html"):
            return self.reply(200, open(page, "rb").read(), "text/html; charset=utf-8")
        self.reply(200, b"test conference\n")

    def hold(self):
        """Keeps a browser's page request unanswered when the test asked for it,
        until the browser gives up on it; True when the request was held."""
        if "Chrome" not in self.headers.get("User-Agent", ""):
            return False
        try:
            left = int(open(HOLD).read().strip() or "1") - 1
            if left > 0:
                open(HOLD, "w").write(str(left))
            else:
                os.remove(HOLD)
        except (OSError, ValueError):
            return False
        self.note("held", self.path)
        self.request.settimeout(HOLD_SECONDS)
        try:
            while self.request.recv(4096):
                pass
        except OSError:
            pass
        self.note("released", self.path)
        self.close_connection = True
        return True

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

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        # TLS per connection, shaken hands in the connection's own thread
        # (Handler.setup). With the listening socket wrapped, accept() does the
        # handshake: one client that connects and never says hello (a browser's
        # spare connection) stalls the whole server, and the page never loads.
        sock, client = self.socket.accept()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), client

    def handle_error(self, request, client_address):
        # A client that gave up mid-handshake or went quiet is not a server bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server = Server((address, int(port)), Handler)
print("listening", flush=True)
server.serve_forever()
