"""The host's end of the TCP checks of the tests/net guests."""
import socket


def listener(addr, port, timeout):
    """A socket listening on addr:port whose accept() waits timeout seconds."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(timeout)
    return s


def accept_one(addr, port):
    """The first connection to addr:port (within 300 s), with 120 s timeouts."""
    srv = listener(addr, port, 300)
    c, _ = srv.accept()
    srv.close()
    c.settimeout(120)
    return c
