#!/usr/bin/env python3
"""Writes a few valid packets (jute, by hand) into corpus/decode_request/ as
starting points for `cargo fuzz run decode_request`. The corpus itself is
not committed."""
import os
import struct

i = lambda v: struct.pack(">i", v)
l = lambda v: struct.pack(">q", v)
b = lambda v: i(len(v)) + v
s = lambda v: b(v.encode())
acl = i(1) + i(31) + s("world") + s("anyone")
done = i(-1) + b"\1" + i(-1)
seeds = {
    "connect": i(0) + l(0) + i(30000) + l(0) + b(bytes(16)) + b"\0",
    "create": i(1) + i(1) + s("/a") + b(b"x") + acl + i(0),
    "create_ttl": i(2) + i(21) + s("/t") + b(b"") + acl + i(5) + l(1000),
    "multi": i(3) + i(14)
    + i(1) + b"\0" + i(-1) + s("/m") + b(b"d") + acl + i(0)
    + i(2) + b"\0" + i(-1) + s("/m") + i(-1)
    + i(5) + b"\0" + i(-1) + s("/m") + b(b"z") + i(3)
    + i(13) + b"\0" + i(-1) + s("/m") + i(0)
    + done,
    "multiread": i(4) + i(22)
    + i(8) + b"\0" + i(-1) + s("/") + b"\0"
    + i(4) + b"\0" + i(-1) + s("/a") + b"\1"
    + done,
    "setwatches2": i(-8) + i(105) + l(7) + i(1) + s("/d") + i(1) + s("/e") + i(0) + i(1) + s("/p") + i(-1),
    "setwatches": i(-8) + i(101) + l(7) + i(1) + s("/d") + i(0) + i(1) + s("/c"),
    "auth": i(-4) + i(100) + i(0) + s("digest") + b(b"u:p"),
    "setacl": i(5) + i(7) + s("/a") + acl + i(-1),
    "reconfig": i(6) + i(16) + s("server.1=a:1:2") + s("") + s("") + l(-1),
    "ping": i(-2) + i(11),
    "framed_create": i(8 + 6 + 5 + len(acl) + 4) + i(1) + i(1) + s("/a") + b(b"x") + acl + i(0),
    # First byte 14 selects the multi reply decoder.
    "reply_multi": bytes([14]) + i(1) + b"\0" + i(0) + s("/m") + i(-1) + b"\0" + i(-101) + i(-101) + done,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "decode_request")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
