#!/usr/bin/env python3
"""Seeds for the binlog fuzz target, cut at run time from the fixture binlogs (never committed).

Usage: seed-binlogs.py FIXTURES_DIR CORPUS_DIR

For each binlog file under FIXTURES_DIR (files starting with the magic bytes \\xfebin), writes to
CORPUS_DIR: the file's first 64 KiB of whole events; and for each rows event (and each
TRANSACTION_PAYLOAD), a small seed of the format description, the table maps before it and that
event: what a mutation must keep for the decoder to reach the row images.
"""
import hashlib
import os
import struct
import sys

ROWS = {23, 24, 25, 30, 31, 32, 39, 40, 166, 167, 168, 169}
TABLE_MAP, FORMAT_DESCRIPTION = 19, 15


def events(data):
    at = 4
    while at + 19 <= len(data):
        size = struct.unpack_from("<I", data, at + 9)[0]
        if size < 19 or at + size > len(data):
            return
        yield data[at:at + size]
        at += size


def write(corpus, blob):
    name = hashlib.sha1(blob).hexdigest()
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(blob)


def main(fixtures, corpus):
    os.makedirs(corpus, exist_ok=True)
    count = 0
    for root, _, files in os.walk(fixtures):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            if not data.startswith(b"\xfebin"):
                continue
            head, fde, maps = b"", b"", {}
            for event in events(data):
                if len(head) + len(event) <= 64 * 1024:
                    head += event
                kind = event[4]
                if kind == FORMAT_DESCRIPTION:
                    fde, maps = event, {}
                elif kind == TABLE_MAP:
                    maps[event[19:25]] = event  # keyed by table id
                elif kind in ROWS and fde:
                    write(corpus, b"\xfebin" + fde + b"".join(maps.values()) + event)
                    count += 1
            write(corpus, b"\xfebin" + head)
            count += 1
    print(f"seed-binlogs: {count} seeds in {corpus}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
