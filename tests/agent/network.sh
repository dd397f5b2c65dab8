#!/bin/bash
# create's `network` field in a real guest: each malformed value is refused
# with the JSON path of the bad field, a MAC the VM does not have is refused
# naming what it has, nothing is created on the way, and the agent keeps
# serving. (tests/net/container-net-guest.sh runs the field that works.)
. "$(dirname "$0")/helpers.bash"
agent_prepare
need_cmd python3
boot_agent

PYTHONPATH=$PROJ/tests/lib python3 - "$CID" >"$T/py" 2>&1 <<'PY' || { cat "$T/py"; fail "the network field checks failed"; }
import json, sys
import agentwire
s = agentwire.connect(int(sys.argv[1]), 60)

def send(obj):
    s.sendall(agentwire.frame(obj))

def read_msg():
    return agentwire.read_msg(s)

send({"type": "hello", "version": 1})
assert read_msg()["type"] == "hello"

def create(network):
    return {"type": "create", "root": {"device": "/dev/vda", "fstype": "ext4"},
            "namespaces": ["mount", "pid"],
            "process": {"args": ["/bin/true"], "env": ["PATH=/bin"], "cwd": "/"},
            "network": network}

IF = {"mac": "52:54:00:12:34:56", "name": "eth0", "mtu": 1500, "addresses": ["10.99.0.2/24"]}
def iface(**kw):
    d = dict(IF)
    d.update(kw)
    return d

cases = [
    (5, "create: network: expected an object"),
    ({}, "create: network.interfaces: expected an array"),
    ({"interfaces": [7]}, "create: network.interfaces[0]: expected an object"),
    ({"interfaces": [{"name": "eth0"}]}, "create: network.interfaces[0].mac: missing"),
    ({"interfaces": [iface(mac="52:54:00:12:34")]},
     'create: network.interfaces[0].mac: "52:54:00:12:34" is not a MAC address (xx:xx:xx:xx:xx:xx)'),
    ({"interfaces": [iface(name="a/b")]},
     'create: network.interfaces[0].name: "a/b" is not an interface name'),
    ({"interfaces": [iface(mtu=20)]},
     "create: network.interfaces[0].mtu: expected an integer from 68 to 65535"),
    ({"interfaces": [iface(addresses="10.99.0.2/24")]},
     "create: network.interfaces[0].addresses: expected an array"),
    ({"interfaces": [iface(addresses=["10.99.0.2/24", "10.99.0.300/24"])]},
     'create: network.interfaces[0].addresses[1]: "10.99.0.300/24" is not an address with its prefix length (10.88.0.5/16, fd00::5/64)'),
    ({"interfaces": [iface(addresses=["10.99.0.2"])]},
     'create: network.interfaces[0].addresses[0]: "10.99.0.2" is not an address with its prefix length (10.88.0.5/16, fd00::5/64)'),
    ({"interfaces": [iface(), iface(name="eth1")]},
     "create: network.interfaces[1].mac: the same as network.interfaces[0]'s"),
    ({"interfaces": [iface()], "routes": [{"gateway": "10.99.0.1"}]},
     "create: network.routes[0].destination: missing"),
    ({"interfaces": [iface()], "routes": [{"destination": "default"}]},
     'create: network.routes[0].destination: "default" is not a prefix (0.0.0.0/0, ::/0, 10.1.0.0/16)'),
    ({"interfaces": [iface()], "routes": [{"destination": "0.0.0.0/0", "gateway": "fd99::1"}]},
     "create: network.routes[0].gateway: fd99::1 is not of the destination's family"),
    ({"interfaces": [iface()], "routes": [{"destination": "0.0.0.0/0", "interface": "eth9"}]},
     'create: network.routes[0].interface: "eth9" is not one of network.interfaces'),
    ({"interfaces": [iface()], "routes": [{"destination": "0.0.0.0/0", "metric": -1}]},
     "create: network.routes[0].metric: expected an integer from 0 to 4294967295"),
    # Well formed, but this VM has no such interface: the error says what it has.
    ({"interfaces": [iface()]},
     "create: network.interfaces[0].mac: no interface has MAC 52:54:00:12:34:56 (the VM has: no Ethernet interface)"),
]
for network, want in cases:
    send(create(network))
    m = read_msg()
    assert m["type"] == "error", (network, m)
    assert m["message"] == want, "for %s:\n got  %r\n want %r" % (json.dumps(network), m["message"], want)
# Nothing was created: start has no container.
send({"type": "start"})
m = read_msg()
assert m["type"] == "error" and "start" in m["message"], m
print("network field checks passed")
PY
expect_run 0 "$T/after" run -- echo alive
assert_eq "$(cat "$T/after")" "alive" "the agent after bad network fields"
shutdown_agent
