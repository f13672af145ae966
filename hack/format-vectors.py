#!/usr/bin/env python3
"""Independent reference implementation of AES-256-GCM-chunked-v1 (docs/format.md).

Written from the document, not from the Swift code, with the `cryptography` package:
it prints the golden vectors that Tests/PipelineTests check byte for byte, and can
decrypt a stored object without backstop:  hack/format-vectors.py decrypt KEYFILE ID < in > out
"""
import base64
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"BKSTPENC"


def derive(key, label, stream_id):
    return hmac.new(key, label + stream_id, hashlib.sha256).digest()


def encrypt(key, backup_id, stream_id, chunk_size, plaintext):
    bid = backup_id.encode()
    out = MAGIC + bytes([1]) + struct.pack(">I", chunk_size) + stream_id
    out += derive(key, b"backstop/v1/key-check", stream_id)[:16] + bytes([len(bid)]) + bid
    aead = AESGCM(derive(key, b"backstop/v1/chunk-key", stream_id))
    chunks = [plaintext[i:i + chunk_size] for i in range(0, len(plaintext), chunk_size)]
    if not chunks or len(chunks[-1]) == chunk_size:
        chunks.append(b"")  # the final chunk always holds fewer than chunk_size bytes
    for index, chunk in enumerate(chunks):
        final = 1 if index == len(chunks) - 1 else 0
        header = stream_id + struct.pack(">QBI", index, final, len(chunk))
        nonce = b"\0\0\0\0" + struct.pack(">Q", index)
        out += header + aead.encrypt(nonce, chunk, b"backstop/v1/chunk" + header + bytes([len(bid)]) + bid)
    return out


def decrypt(key, backup_id, data):
    bid = backup_id.encode()
    assert data[:8] == MAGIC and data[8] == 1, "not an AES-256-GCM-chunked-v1 stream"
    chunk_size = struct.unpack(">I", data[9:13])[0]
    stream_id = data[13:29]
    assert data[29:45] == derive(key, b"backstop/v1/key-check", stream_id)[:16], "wrong key"
    id_length = data[45]
    assert data[46:46 + id_length] == bid, "stream belongs to another backup"
    aead = AESGCM(derive(key, b"backstop/v1/chunk-key", stream_id))
    offset, index, out = 46 + id_length, 0, b""
    while True:
        header = data[offset:offset + 29]
        assert len(header) == 29, "truncated"
        sid, chunk_index, flags, length = header[:16], *struct.unpack(">QBI", header[16:])
        assert sid == stream_id and chunk_index == index and length <= chunk_size
        body = data[offset + 29:offset + 29 + length + 16]
        nonce = b"\0\0\0\0" + struct.pack(">Q", index)
        out += aead.decrypt(nonce, body, b"backstop/v1/chunk" + header + bytes([len(bid)]) + bid)
        offset += 29 + length + 16
        index += 1
        if flags & 1:
            assert offset == len(data), "trailing data"
            return out


def vectors():
    key = bytes(range(32))
    stream_id = bytes(range(0xA0, 0xB0))
    backup_id = "20261121T020000Z-3f9a"
    cases = [("empty", b"", 16), ("one partial chunk", b"backstop", 16),
             ("two full chunks and an empty final", b"0123456789abcdef" * 2, 16),
             ("three chunks", b"PostgreSQL backups you can prove.", 16)]
    fingerprint = hmac.new(key, b"backstop/v1/key-fingerprint", hashlib.sha256).digest()[:8].hex()
    print(f"key (hex): {key.hex()}\nkey fingerprint: hmac-sha256:{fingerprint}")
    print(f"stream id (hex): {stream_id.hex()}\nbackup id: {backup_id}\n")
    for name, plaintext, chunk_size in cases:
        sealed = encrypt(key, backup_id, stream_id, chunk_size, plaintext)
        assert decrypt(key, backup_id, sealed) == plaintext
        print(f"{name}: chunk size {chunk_size}, plaintext {plaintext!r}\n{sealed.hex()}\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "decrypt":
        raw = open(sys.argv[2], "rb").read()
        key = raw if len(raw) == 32 else base64.b64decode(raw.strip())
        sys.stdout.buffer.write(decrypt(key, sys.argv[3], sys.stdin.buffer.read()))
    else:
        vectors()
