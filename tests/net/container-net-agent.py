#!/usr/bin/env python3
"""Runs one container through petrel-agent over vsock, with a `network`
object in its create message, and prints its stdout; exits with its status
(125 when the agent refused). For tests/net/container-net-*.sh.

    container-net-agent.py CID NETWORK_JSON_FILE SCRIPT
"""
import json
import socket
import struct
import sys
import time

cid, net_file, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(net_file) as f:
    network = json.load(f)

deadline = time.time() + 180
while True:
    try:
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect((cid, 1024))
        break
    except OSError:
        s.close()
        if time.time() > deadline:
            sys.exit("the agent did not answer on vsock cid %d" % cid)
        time.sleep(0.5)


def send(obj):
    data = json.dumps(obj).encode()
    s.sendall(struct.pack(">IB3xI", len(data), 1, 0) + data)


def read_frame():
    buf = b""
    while len(buf) < 12:
        chunk = s.recv(12 - len(buf))
        if not chunk:
            sys.exit("the agent hung up")
        buf += chunk
    n, ftype, proc = struct.unpack(">IB3xI", buf)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            sys.exit("the agent hung up mid-frame")
        body += chunk
    return ftype, proc, body


def read_msg():
    while True:
        ftype, _, body = read_frame()
        if ftype == 1:
            return json.loads(body)


send({"type": "hello", "version": 1})
assert read_msg()["type"] == "hello"
send({"type": "create",
      "root": {"device": "/dev/vda", "fstype": "ext4"},
      "namespaces": ["mount", "pid", "uts", "ipc"],
      "process": {"args": ["/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"},
      "network": network})
m = read_msg()
if m["type"] != "created":
    print(m.get("message", m), file=sys.stderr)
    sys.exit(125)
send({"type": "start"})
while True:
    ftype, proc, body = read_frame()
    if ftype in (3, 4):
        (sys.stdout if ftype == 3 else sys.stderr).buffer.write(body)
        continue
    m = json.loads(body)
    if m["type"] == "error":
        print(m["message"], file=sys.stderr)
        sys.exit(125)
    if m["type"] == "exit":
        sys.stdout.flush()
        sys.exit(m["status"])
