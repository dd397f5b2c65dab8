#!/bin/bash
# The agent in a real guest treats the host as hostile: a request before hello,
# a frame with a bad header, a truncated frame and a malformed message are
# answered with errors or a hang-up, and the agent keeps serving.
. "$(dirname "$0")/helpers.bash"
agent_prepare
need_cmd python3
boot_agent

PYTHONPATH=$PROJ/tests/lib python3 - "$CID" >"$T/py" 2>&1 <<'PY' || { cat "$T/py"; fail "the protocol checks failed"; }
import struct, sys
from agentwire import connect, frame, read_msg
cid = int(sys.argv[1])

def conn():
    return connect(cid, 20)

# Not hello first: an error, then the agent hangs up.
s = conn()
s.sendall(frame({"type": "create"}))
m = read_msg(s)
assert m["type"] == "error" and "hello" in m["message"], m
assert read_msg(s) is None, "the agent kept a connection that skipped hello"

# A header with an unknown type: error and hang-up.
s = conn()
s.sendall(frame({"type": "hello", "version": 1}))
assert read_msg(s)["type"] == "hello"
s.sendall(struct.pack(">IB3xI", 4, 99, 0) + b"xxxx")
m = read_msg(s)
assert m["type"] == "error" and "unknown type 99" in m["message"], m
assert read_msg(s) is None

# An oversized length: refused before anything is buffered.
s = conn()
s.sendall(frame({"type": "hello", "version": 1}))
read_msg(s)
s.sendall(struct.pack(">IB3xI", 0x7fffffff, 1, 0))
m = read_msg(s)
assert m["type"] == "error" and "exceeds" in m["message"], m

# Malformed JSON and bad fields: an error each, the connection stays usable.
s = conn()
s.sendall(frame({"type": "hello", "version": 1}))
read_msg(s)
s.sendall(frame(b"{\"type\":"))
m = read_msg(s)
assert m["type"] == "error" and "invalid JSON" in m["message"], m
s.sendall(frame({"type": "signal", "id": 1, "signal": 99}))
m = read_msg(s)
assert m["type"] == "error" and "signal" in m["message"], m
s.sendall(frame({"type": "signal", "id": 1, "signal": 9}))
m = read_msg(s)
assert m["type"] == "error" and "not running" in m["message"], m
s.sendall(frame({"type": "hello", "version": 7}))
m = read_msg(s)
assert m == {"type": "hello", "version": 1, "agent": m["agent"]} and m["agent"].startswith("petrel-agent"), m

# A frame cut short by a closed connection.
s = conn()
s.sendall(frame({"type": "hello", "version": 1})[:7])
s.close()
print("protocol checks passed")
PY
expect_run 0 "$T/after" run -- echo alive
assert_eq "$(cat "$T/after")" "alive" "the agent after hostile input"
shutdown_agent
