#!/usr/bin/env python3
"""Runs one container through petrel-agent over vsock, with a `network`
object in its create message, and prints its stdout; exits with its status
(125 when the agent refused). For tests/net/container-net-*.sh.

    container-net-agent.py CID NETWORK_JSON_FILE SCRIPT
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
import agentwire  # noqa: E402

cid, net_file, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(net_file) as f:
    network = json.load(f)

deadline = time.time() + 180
while True:
    try:
        s = agentwire.connect(cid, 120)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("the agent did not answer on vsock cid %d" % cid)
        time.sleep(0.5)


def send(obj):
    s.sendall(agentwire.frame(obj))


def read_frame():
    try:
        f = agentwire.read_frame(s)
    except EOFError as e:
        sys.exit(str(e))
    if f is None:
        sys.exit("the agent hung up")
    return f


def read_msg():
    while True:
        ftype, _, body = read_frame()
        if ftype == agentwire.FRAME_MSG:
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
    if ftype in (agentwire.FRAME_STDOUT, agentwire.FRAME_STDERR):
        (sys.stdout if ftype == agentwire.FRAME_STDOUT else sys.stderr).buffer.write(body)
        continue
    m = json.loads(body)
    if m["type"] == "error":
        print(m["message"], file=sys.stderr)
        sys.exit(125)
    if m["type"] == "exit":
        sys.stdout.flush()
        sys.exit(m["status"])
