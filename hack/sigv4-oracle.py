#!/usr/bin/env python3
"""Signs generated S3 requests with botocore, the reference SigV4 implementation, so the Swift
signer can be checked against it byte for byte (Tests/StorageTests/SigV4Tests.swift).

    hack/sigv4-oracle.py COUNT SEED  ->  one JSON object per line:
    {method, key, query: [[name, value]...], headers: [[name, value]...], body (hex),
     unsigned, token, authorization}

Keys, query values and headers are raw (unencoded); this script encodes them the way
botocore's S3 client does, so the Swift side's own encoding is under test too.
"""
import datetime
import hashlib
import json
import random
import sys
from urllib.parse import quote

import botocore.auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXED = datetime.datetime(2026, 11, 22, 1, 2, 3, tzinfo=datetime.timezone.utc)
botocore.auth.get_current_datetime = lambda: FIXED

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BUCKET = "backstop-oracle"
REGION = "eu-central-1"

PIECES = [
    "a", "Z", "0", "backups", "manifest.json", "-", "_", ".", "~", " ", "  ", "+", "=", "&", "?", "#",
    "%", "%20", "!", "'", "(", ")", "*", ",", ";", ":", "@", "$", "[", "]", "{", "}", "|", "^", "`", "\\",
    "\"", "<", ">", "é", "ß", "日本", "🙂", "\u00a0", "tab\tin", "a/b", "//", "./", "..",
]


class ClientConfig:
    def __init__(self, sign_payload):
        self.s3 = {"payload_signing_enabled": sign_payload}


def text(rng, low, high):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(low, high)))


def generate(rng):
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    key = text(rng, 1, 6)
    query = []
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        name = rng.choice(["prefix", "list-type", "continuation-token", "uploadId", "partNumber", "delete",
                           "uploads", "max-keys", "x-id", text(rng, 1, 2)])
        query.append([name, rng.choice(["", "2", text(rng, 1, 5), "ns/policy/env/backups/"])])
    headers = []
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["Content-Type", "Range", "If-Match", "x-amz-storage-class", "Content-MD5",
                           "X-Amz-Meta-Note", "x-amz-server-side-encryption", "Cache-Control"])
        if any(existing[0].lower() == name.lower() for existing in headers):
            continue
        value = rng.choice(["application/xml", "bytes=0-9", '"etag-1"', "STANDARD_IA",
                            "  spaced   out  value ", "AES256", "a\tb", "no-cache"])
        headers.append([name, value])
    body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 0, 1, 17, 300])))
    unsigned = rng.random() < 0.2
    token = rng.choice([None, None, "FQoGZXIvYXdzEJr//////////wEaDOtoken+with/slashes="])
    return method, key, query, headers, body, unsigned, token


def sign(method, key, query, headers, body, unsigned, token):
    path = "/" + quote(key, safe="/~")
    url = f"https://{BUCKET}.s3.{REGION}.amazonaws.com{path}"
    if query:
        url += "?" + "&".join(f"{quote(n, safe='-_.~')}={quote(v, safe='-_.~')}" for n, v in query)
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value
    request.context["client_config"] = ClientConfig(not unsigned)
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "s3", REGION).add_auth(request)
    return request.headers["Authorization"]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    for _ in range(count):
        method, key, query, headers, body, unsigned, token = generate(rng)
        authorization = sign(method, key, query, headers, body, unsigned, token)
        print(json.dumps({"method": method, "key": key, "query": query, "headers": headers, "body": body.hex(),
                          "unsigned": unsigned, "token": token, "authorization": authorization}, ensure_ascii=False))


if __name__ == "__main__":
    main()
