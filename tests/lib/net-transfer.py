#!/usr/bin/env python3
"""The host end of the 8 MiB transfers of tests/lib/net.sh.

net-transfer.py ADDR DOWN UP LISTENING: on ADDR, sends the file DOWN to the
first client of port 5002 and writes what the first client of port 5001
sends to the file UP; creates the file LISTENING once both ports listen.
"""
import shutil
import sys
import threading

from tcppeer import listener

addr, down, up, listening = sys.argv[1:5]

rx, tx = listener(addr, 5001, 600), listener(addr, 5002, 600)
open(listening, "w").close()


def receive():
    c, _ = rx.accept()
    with c.makefile("rb") as r, open(up, "wb") as f:
        shutil.copyfileobj(r, f)
    c.close()


def send():
    c, _ = tx.accept()
    with open(down, "rb") as f:
        c.sendall(f.read())
    c.close()


threads = [threading.Thread(target=receive), threading.Thread(target=send)]
for t in threads:
    t.start()
for t in threads:
    t.join()
