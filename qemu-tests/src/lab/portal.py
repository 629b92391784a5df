# The lab's captive portal, in the uplink namespace: every name resolves to the
# portal (DNS on UDP 53), every HTTP request is redirected to its sign-in form
# until the form is posted; posting it lets the client's address through the
# lab's router (nft set `signed_in`). Logs one line per DNS question and request.
import http.server, socket, socketserver, struct, subprocess, sys, threading

address, log_path, table = sys.argv[1:4]
log_lock = threading.Lock()

def log(line):
    with log_lock, open(log_path, "a") as f:
        f.write(line + "\n")

def dns_answer(query):
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        return None
    end = 12
    labels = []
    while end < len(query) and query[end] != 0:
        labels.append(query[end + 1:end + 1 + query[end]].decode("ascii", "replace"))
        end += 1 + query[end]
    question = query[12:end + 5]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
    name = ".".join(labels)
    header = struct.pack("!HHHHHH", ident, 0x8180, 1, 1 if qtype == 1 else 0, 0, 0)
    answer = b""
    if qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton(address)
    return name, qtype, header + question + answer

def serve_dns():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        query, client = sock.recvfrom(1500)
        answered = dns_answer(query)
        if answered:
            name, qtype, reply = answered
            log(f"dns {client[0]} {name} type {qtype}")
            sock.sendto(reply, client)

FORM = (b"<!doctype html><title>Lab Hotel network</title>"
        b"<h1>Lab Hotel network: sign in</h1>"
        b"<form method=post action=/login><button autofocus type=submit>"
        b"Accept the terms and go online</button></form>")
ONLINE = b"<!doctype html><title>Online</title><h1>You are online.</h1>"

class Portal(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", location=None):
        self.send_response(code)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        host = self.headers.get("Host", "")
        log(f"get {self.client_address[0]} {host}{self.path}")
        if self.path == "/login":
            self.reply(200, FORM)
        else:
            self.reply(302, location=f"http://{address}/login")

    def do_POST(self):
        client = self.client_address[0]
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        subprocess.run(["nft", "add", "element", "inet", table, "signed_in", "{", client, "}"],
                       check=True)
        log(f"signed-in {client}")
        self.reply(200, ONLINE)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

threading.Thread(target=serve_dns, daemon=True).start()
server = Server((address, 80), Portal)
print("listening", flush=True)
server.serve_forever()
