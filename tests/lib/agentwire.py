"""petrel-agent's frames (common/agent-proto.h) for the tests that talk to
the agent over vsock themselves: a 12-byte big-endian header (payload
length u32, frame type u8, 3 bytes of padding, process id u32), then the
payload; AGENT_FRAME_MSG frames carry one JSON object."""
import json
import socket
import struct

PORT = 1024
HEADER = struct.Struct(">IB3xI")
FRAME_MSG, FRAME_STDIN, FRAME_STDOUT, FRAME_STDERR = 1, 2, 3, 4


def connect(cid, timeout):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((cid, PORT))
    except OSError:
        s.close()
        raise
    return s


def frame(obj, ftype=FRAME_MSG, proc=0):
    """A frame of obj: bytes as they are, anything else as JSON."""
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return HEADER.pack(len(data), ftype, proc) + data


def recv_exact(s, n):
    """n bytes from s, or fewer when the agent hangs up first."""
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def read_frame(s):
    """(type, process id, payload) of the next frame, None when the agent
    hung up before a whole header; EOFError when it hung up mid-payload."""
    hdr = recv_exact(s, HEADER.size)
    if len(hdr) < HEADER.size:
        return None
    n, ftype, proc = HEADER.unpack(hdr)
    body = recv_exact(s, n)
    if len(body) < n:
        raise EOFError("the agent hung up mid-frame")
    return ftype, proc, body


def read_msg(s):
    """The JSON of the next frame, None when the agent hung up."""
    f = read_frame(s)
    return None if f is None else json.loads(f[2])
