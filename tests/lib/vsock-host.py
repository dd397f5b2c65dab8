#!/usr/bin/env python3
"""Host side of the vsock tests (tests/vmm/vsock-*.sh).

  vsock-host.py hybrid UDS PORT SEND RECV     CONNECT through petrel-vmm's hybrid socket
  vsock-host.py hybrid-refused UDS PORT       expect the connection closed without "OK"
  vsock-host.py listen PATH SEND RECV         accept one guest-initiated connection
  vsock-host.py vsock CID PORT SEND RECV      AF_VSOCK (vhost-vsock)

SEND is sent then half-closed while the peer's bytes go to RECV until EOF.
The connecting modes retry for --wait seconds (default 120) while the guest
is not listening yet.
"""
import argparse
import socket
import sys
import threading
import time


def pump(read, write):
    """Moves 64 KiB chunks from read() to write() until read() returns none."""
    while True:
        chunk = read(65536)
        if not chunk:
            return
        write(chunk)


def duplex(sock, send_path, recv_path):
    err = []

    def sender():
        try:
            with open(send_path, "rb") as f:
                pump(f.read, sock.sendall)
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=sender)
    t.start()
    with open(recv_path, "wb") as out:
        pump(sock.recv, out.write)
    t.join()
    sock.close()
    if err:
        raise err[0]


def hybrid_connect(uds, port):
    """The connected socket after "OK <n>", or None when closed without it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            s.close()
            return None, line
        line += c
    if not line.startswith(b"OK "):
        raise SystemExit("unexpected reply %r" % line)
    s.settimeout(None)
    return s, line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("args", nargs="+")
    ap.add_argument("--wait", type=float, default=120)
    a = ap.parse_args()
    deadline = time.time() + a.wait
    if a.mode == "hybrid":
        uds, port, send, recv = a.args
        while True:
            try:
                s, line = hybrid_connect(uds, int(port))
            except (FileNotFoundError, ConnectionRefusedError):
                s, line = None, b""
            if s:
                break
            if time.time() > deadline:
                raise SystemExit("hybrid CONNECT %s: never answered OK" % port)
            time.sleep(0.5)
        print("reply:", line.decode().strip(), flush=True)
        duplex(s, send, recv)
    elif a.mode == "hybrid-refused":
        uds, port = a.args
        while True:
            try:
                s, line = hybrid_connect(uds, int(port))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.time() > deadline:
                    raise SystemExit("%s never appeared" % uds)
                time.sleep(0.5)
        if s:
            raise SystemExit("CONNECT %s was answered %r" % (port, line))
        print("closed without OK", flush=True)
    elif a.mode == "listen":
        path, send, recv = a.args
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(1)
        ls.settimeout(a.wait)
        s, _ = ls.accept()
        s.settimeout(None)
        ls.close()
        print("accepted", flush=True)
        duplex(s, send, recv)
    elif a.mode == "vsock":
        cid, port, send, recv = a.args
        while True:
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            try:
                s.connect((int(cid), int(port)))
                break
            except OSError as e:
                s.close()
                if time.time() > deadline:
                    raise SystemExit("vsock connect %s:%s: %s" % (cid, port, e))
                time.sleep(0.5)
        print("connected", flush=True)
        duplex(s, send, recv)
    else:
        raise SystemExit("unknown mode " + a.mode)


if __name__ == "__main__":
    sys.exit(main())
