#!/usr/bin/env python3
"""Asks restic itself which snapshots its `forget` keeps, for the retention cases below, so
that Backstop's rules (BackstopAPI.RetentionPolicy) can be checked against the tool whose
rules the README promises. restic 0.16 or newer is needed (it keeps the oldest snapshot while
a rule has counts left, and reads -1 as "all"); Debian 12 has 0.14, so the package of Debian
13 is fetched with apt when no new enough restic is on PATH.

    hack/restic-oracle.py --write   -> regenerates Tests/BackstopAPITests/Fixtures/restic-retention.json
    hack/restic-oracle.py --check   -> regenerates into a temporary file; exit 1 if it differs
                                       from the committed one (hack/test.sh runs this)

Each case is a history of snapshot times (UTC) in a time zone, and rules written as restic
takes them; the fixture records what restic kept. The Swift test evaluates the same history
with the same rules (windows in Backstop's units: `6mo`, not restic's `6m`) and must keep
exactly the same snapshots.
"""
import base64
import concurrent.futures
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import zoneinfo

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE = os.path.join(ROOT, "Tests", "BackstopAPITests", "Fixtures", "restic-retention.json")
# Every snapshot is older than this, and older than the clock restic runs with: restic leaves
# snapshots "in the future" out when it finds the newest one.
NOW = datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc)


def utc(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def snapshot_time(text):
    """restic's RFC 3339 time (nanoseconds, an offset or Z) as an instant."""
    return utc(re.sub(r"\.\d+", "", text))


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def series(start, count, step_hours):
    first = utc(start)
    return [first + datetime.timedelta(hours=step_hours * i) for i in range(count)]


def random_history(seed, count, days):
    generator = random.Random(seed)
    return sorted({NOW - datetime.timedelta(seconds=generator.randrange(3600, days * 86400)) for _ in range(count)})


def cases():
    """(name, time zone, snapshots, Backstop's rules). Rules use Backstop's units; `restic_rules`
    translates them."""
    generator = random.Random(2026)
    listed = [
        ("seed 001: 7 daily, 4 weekly, 12 monthly over two months (the oldest kept while months are left)", "Etc/UTC",
         series("2026-09-20T02:00:00Z", 70, 24), {"daily": 7, "weekly": 4, "monthly": 12}),
        ("seed 002: the last 30", "Etc/UTC", series("2026-10-01T02:00:00Z", 40, 24), {"last": 30}),
        ("last 3 of several a day", "Etc/UTC", series("2026-11-20T00:30:00Z", 12, 5), {"last": 3}),
        ("within 10d counts back from the newest backup, though backups stopped weeks ago", "Etc/UTC",
         series("2026-09-01T02:00:00Z", 25, 24), {"within": "10d"}),
        ("within 6mo: calendar months, month ends normalised as Go's AddDate", "Etc/UTC",
         [utc(t) for t in ["2026-02-28T12:00:00Z", "2026-03-01T12:00:00Z", "2026-03-03T11:00:00Z", "2026-03-03T13:00:00Z",
                           "2026-03-31T12:00:00Z", "2026-05-31T12:00:00Z", "2026-08-31T12:00:00Z"]],
         {"within": "6mo"}),
        ("within 1y2mo3d4h, several parts", "Europe/Berlin",
         series("2025-08-20T01:15:00Z", 30, 13 * 24 + 5), {"within": "1y2mo3d4h"}),
        ("within 2w is 14 days", "America/New_York", series("2026-10-01T03:00:00Z", 30, 23), {"within": "2w"}),
        ("hourly across the start of daylight saving time in Berlin", "Europe/Berlin",
         series("2026-03-28T20:30:00Z", 16, 1), {"hourly": 8}),
        ("daily across the end of daylight saving time in Berlin", "Europe/Berlin",
         series("2026-10-24T19:45:00Z", 20, 2), {"daily": 3}),
        ("ISO week 53 and years across the new year", "Etc/UTC",
         series("2025-12-20T12:00:00Z", 24, 24), {"weekly": 3, "yearly": 2}),
        ("unlimited keeps every day", "Asia/Kolkata", series("2026-11-01T20:00:00Z", 20, 9), {"daily": "unlimited", "last": 2}),
        ("monthly and yearly: the oldest kept while counts are left", "Etc/UTC",
         series("2025-06-15T02:00:00Z", 18, 24 * 25), {"monthly": 24, "yearly": 5}),
    ]
    zones = ["Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
    for index in range(10):
        # Rules small against their histories, so that most of each history is decided by them.
        rules = {}
        if generator.random() < 0.4:
            rules["within"] = generator.choice(["3d", "10d", "2w", "1mo", "36h"])
        for name, top in [("last", 4), ("hourly", 10), ("daily", 6), ("weekly", 4), ("monthly", 3), ("yearly", 1)]:
            if generator.random() < 0.35:
                rules[name] = generator.randint(1, top)
        if not rules:
            rules["daily"] = 3
        listed.append((f"random history {index + 1}", generator.choice(zones),
                       random_history(100 + index, generator.randint(20, 40), generator.choice([5, 30, 120, 500])), rules))
    return listed


def restic_rules(rules):
    """Backstop's windows in restic's units: mo becomes m, w becomes 7d."""
    arguments = []
    for name, value in rules.items():
        if name == "within":
            value = re.sub(r"(\d+)w", lambda m: f"{int(m.group(1)) * 7}d", value).replace("mo", "m")
        arguments += [f"--keep-{name}", str(value)]
    return arguments


def find_restic():
    for candidate in [os.environ.get("BACKSTOP_RESTIC"), shutil.which("restic"), "/tmp/backstop-restic/usr/bin/restic"]:
        if candidate and os.access(candidate, os.X_OK):
            version = subprocess.run([candidate, "version"], capture_output=True, text=True).stdout
            match = re.search(r"restic (\d+)\.(\d+)", version)
            if match and (int(match.group(1)), int(match.group(2))) >= (0, 16):
                return candidate
    # Debian 13's package, fetched with apt (only Debian's archive is needed) and unpacked.
    folder = "/tmp/backstop-restic"
    lists = os.path.join(folder, "apt")
    os.makedirs(os.path.join(lists, "lists", "partial"), exist_ok=True)
    os.makedirs(os.path.join(lists, "cache", "archives", "partial"), exist_ok=True)
    with open(os.path.join(lists, "sources.list"), "w") as sources:
        sources.write("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n")
    open(os.path.join(lists, "status"), "a").close()
    options = [f"-oDir::Etc::SourceList={lists}/sources.list", "-oDir::Etc::SourceParts=/dev/null",
               f"-oDir::State::Lists={lists}/lists", f"-oDir::Cache={lists}/cache", f"-oDir::State::status={lists}/status",
               "-oAPT::Sandbox::User=root", "-oDPkg::Lock::Timeout=600"]
    subprocess.run(["apt-get", *options, "-qq", "update"], check=True)
    subprocess.run(["apt-get", *options, "-qq", "download", "restic"], check=True, cwd=folder)
    package = sorted(name for name in os.listdir(folder) if name.startswith("restic_") and name.endswith(".deb"))[-1]
    subprocess.run(["dpkg-deb", "-x", os.path.join(folder, package), folder], check=True)
    return os.path.join(folder, "usr", "bin", "restic")


def fast_repository(restic, repository):
    """A repository whose key file uses cheap scrypt parameters. restic calibrates its key
    derivation to about half a second, paid by every command; hundreds of snapshots would take
    minutes. The master key is wrapped again as restic's key files wrap it (scrypt, then
    AES-256-CTR and Poly1305-AES over the ciphertext), and the calibrated key file removed."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.poly1305 import Poly1305

    environment = dict(os.environ, RESTIC_REPOSITORY=repository, RESTIC_PASSWORD="oracle")
    subprocess.run([restic, "init", "--quiet"], check=True, capture_output=True, env=environment)
    master = subprocess.run([restic, "cat", "masterkey"], check=True, capture_output=True, env=environment).stdout.strip()
    salt = os.urandom(64)
    derived = hashlib.scrypt(b"oracle", salt=salt, n=1024, r=8, p=1, dklen=64)
    encryption, mac_k, mac_r = derived[:32], derived[32:48], derived[48:64]
    nonce = os.urandom(16)
    encryptor = Cipher(algorithms.AES(encryption), modes.CTR(nonce)).encryptor()
    ciphertext = encryptor.update(master) + encryptor.finalize()
    one_time = Cipher(algorithms.AES(mac_k), modes.ECB()).encryptor().update(nonce)
    tag = Poly1305.generate_tag(mac_r + one_time, ciphertext)
    key = json.dumps({"created": "2026-11-30T00:00:00Z", "username": "oracle", "hostname": "oracle", "kdf": "scrypt",
                      "N": 1024, "r": 8, "p": 1, "salt": base64.b64encode(salt).decode(),
                      "data": base64.b64encode(nonce + ciphertext + tag).decode()}).encode()
    keys = os.path.join(repository, "keys")
    for name in os.listdir(keys):
        os.remove(os.path.join(keys, name))
    with open(os.path.join(keys, hashlib.sha256(key).hexdigest()), "wb") as file:
        file.write(key)


def run_case(restic, folder, index, case):
    name, zone, snapshots, rules = case
    host = f"case{index}"
    # A repository per case: restic locks a repository for each backup, and cases run in parallel.
    repository = os.path.join(folder, host)
    shutil.copytree(os.path.join(folder, "template"), repository)
    environment = dict(os.environ, RESTIC_REPOSITORY=repository, RESTIC_PASSWORD="oracle", TZ=zone, RESTIC_CACHE_DIR=repository + "-cache")
    local = zoneinfo.ZoneInfo(zone)
    data = os.path.join(repository + "-data", host)
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "file"), "w") as file:
        file.write(host)
    for moment in snapshots:
        wall = moment.astimezone(local)
        # restic reads --time as a wall-clock time in TZ: an hour that happens twice (the end
        # of daylight saving time) would be read as its first occurrence, so the instant
        # restic records is the one to compare.
        subprocess.run([restic, "backup", "--quiet", "--no-scan", "--host", host, "--time", wall.strftime("%Y-%m-%d %H:%M:%S"), data],
                       check=True, env=environment, capture_output=True)
    listing = json.loads(subprocess.run([restic, "snapshots", "--json", "--host", host], check=True, env=environment,
                                        capture_output=True, text=True).stdout)
    taken = sorted(iso(snapshot_time(snapshot["time"])) for snapshot in listing)
    forget = json.loads(subprocess.run([restic, "forget", "--dry-run", "--json", "--host", host, *restic_rules(rules)], check=True,
                                       env=environment, capture_output=True, text=True).stdout)
    kept = sorted(iso(snapshot_time(snapshot["time"])) for group in forget for snapshot in group["keep"] or [])
    return {"name": name, "timeZone": zone, "rules": rules, "snapshots": taken, "kept": kept}


def generate():
    restic = find_restic()
    version = re.search(r"restic (\S+)", subprocess.run([restic, "version"], capture_output=True, text=True).stdout).group(1)
    # On tmpfs when there is one: restic syncs every file it writes.
    folder = tempfile.mkdtemp(prefix="backstop-restic-oracle-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        fast_repository(restic, os.path.join(folder, "template"))
        # restic waits a fifth of a second after taking its lock in every backup; the cases
        # mostly wait, so they all run at once.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases())) as pool:
            results = list(pool.map(lambda item: run_case(restic, folder, *item), enumerate(cases())))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"restic": version, "now": iso(NOW), "cases": results}


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    document = json.dumps(generate(), indent=1, sort_keys=True) + "\n"
    if mode == "--write":
        os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
        with open(FIXTURE, "w") as file:
            file.write(document)
        print(f"wrote {FIXTURE}")
        return
    with open(FIXTURE) as file:
        committed = file.read()
    if json.loads(committed)["cases"] != json.loads(document)["cases"]:
        print("restic's decisions differ from Tests/BackstopAPITests/Fixtures/restic-retention.json; run hack/restic-oracle.py --write and look at the diff")
        sys.exit(1)
    print(f"restic {json.loads(document)['restic']} keeps what the committed fixture says ({len(json.loads(document)['cases'])} cases)")


if __name__ == "__main__":
    main()
