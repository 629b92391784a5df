# The lab's resolver address (10.99.0.53) behind the tunnel: logs every name the
# guest asks for and answers REFUSED. The conference test proves with this log that
# the browser looks up nothing (no calls home through the tunnel).
import json, socket, struct, sys, time
address, log = sys.argv[1:3]

def question(packet):
    """(name, type) of the first question, or None for a packet that has none."""
    if len(packet) < 12 or struct.unpack("!H", packet[4:6])[0] == 0:
        return None
    labels, at = [], 12
    while at < len(packet) and packet[at] != 0:
        size = packet[at]
        labels.append(packet[at + 1:at + 1 + size].decode("ascii", "replace"))
        at += 1 + size
    kind = struct.unpack("!H", packet[at + 1:at + 3])[0] if at + 3 <= len(packet) else 0
    return ".".join(labels), kind, at + 5

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((address, 53))
print("listening", flush=True)
while True:
    packet, client = sock.recvfrom(4096)
    asked = question(packet)
    if asked is None:
        continue
    name, kind, end = asked
    with open(log, "a") as f:
        f.write(json.dumps({"t": time.time(), "client": client[0], "name": name, "type": kind}) + "\n")
    # Same id, response + recursion desired/available, REFUSED; the question echoed.
    flags = 0x8000 | (struct.unpack("!H", packet[2:4])[0] & 0x0100) | 0x0080 | 5
    sock.sendto(packet[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + packet[12:end], client)
