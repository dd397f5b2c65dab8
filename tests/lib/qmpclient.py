"""A small QMP client for the tests: connect, negotiate, run commands, collect events."""
import json
import os
import socket
import time


class QMPError(Exception):
    pass


class QMP:
    def __init__(self, path, timeout=60.0):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise QMPError("cannot connect to %s" % path)
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        self.greeting = self._read()
        if "QMP" not in self.greeting:
            raise QMPError("bad greeting: %r" % self.greeting)

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """Next non-event message; events are kept in self.events."""
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name, args=None, id=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        if id is not None:
            req["id"] = id
        self.send_raw(json.dumps(req) + "\n")
        return self.reply()

    def negotiate(self):
        r = self.cmd("qmp_capabilities")
        if r.get("return") != {}:
            raise QMPError("qmp_capabilities: %r" % r)

    def wait_event(self, name, timeout=30.0):
        deadline = time.time() + timeout
        while True:
            for ev in self.events:
                if ev["event"] == name:
                    self.events.remove(ev)
                    return ev
            if time.time() > deadline:
                raise QMPError("no %s event" % name)
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                msg = self._read()
            except socket.timeout:
                continue
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        self.sock.close()


def wait_for_text(path, text, timeout, give_up=None):
    """Waits until the file at path (a guest console) contains text; fails at
    once when it contains give_up (the guest's own failure marker)."""
    deadline = time.time() + timeout
    while True:
        seen = open(path, errors="replace").read()
        if text in seen:
            return
        assert give_up is None or give_up not in seen, "the guest gave up (%r)" % give_up
        assert time.time() < deadline, "no %r on the console" % text
        time.sleep(0.2)
