#!/usr/bin/env python3
"""The lostcard demo: a finder drops cards into two street boxes; holders get notices.

Run through tools/demo (which builds first). Everything runs on this machine, on real parts:
a private PostgreSQL cluster, lostcard-cloud over mutual TLS, two lostcard-kiosk daemons on
simulated hardware (their physical state is folders under the run directory), and
lostcard-webhook-sink standing for the holders' phones.

It ends with one line, `demo: dropped=N notified=R difficult=D lost=L`, and exits 0 only when
no card is lost and every card went where it should: enrolled cards to a slot with a notice to
their own holder naming the right box, the others to the difficult-card bin.

--keep DIR runs in DIR (empty or new) instead of build/demo-run and leaves there every file the
run made: the PostgreSQL data directory (checkpointed and cleanly stopped), every process's log,
the kiosks' journals and simulated boxes, the keys and certificates. DIR/dropped.tsv (deposit id
TAB card number) is the finder's own list of what was dropped: the only file of the run that
holds card numbers (the finder's working files live in a private temporary folder, removed at
the end). tests/e2e/no_number_in_clear_e2etest.cpp searches the rest for numbers.

The cloud also serves the people's HTTPS API (lostcard-cloud --http-listen, docs/openapi.yaml);
the demo makes one holder, one operator and one issuer staff account (passwords generated, kept
in accounts.tsv of the run's folder) and checks through the API that the holder sees their card.
--serve then keeps everything running until SIGINT or SIGTERM and prints, once ready,
`serving: kiosk=HOST:PORT http=HOST:PORT` and how to log in.
"""
import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The programs: build/bin, or $LOSTCARD_BIN_DIR (a test running the demo from its build tree).
BIN = Path(os.environ.get("LOSTCARD_BIN_DIR") or ROOT / "build" / "bin")
TOOLS = ROOT / "tools"

ISSUERS = [("nordbank", "Nordbank"), ("citytransit", "City Transit")]
HOLDERS = [  # id, name, issuer
    ("holder-ada", "Ada Lovelace", "nordbank"),
    ("holder-alan", "Alan Turing", "nordbank"),
    ("holder-grace", "Grace Hopper", "citytransit"),
    ("holder-edsger", "Edsger Dijkstra", "nordbank"),
]
KIOSKS = [
    dict(id="kiosk-hbf", name="Hauptbahnhof, north exit",
         address="Europaplatz 1, 10557 Berlin", lat=52.5251, lon=13.3694,
         hours="Mo-Su 05:00-24:00", slots=12),
    dict(id="kiosk-campus", name="Campus library entrance",
         address="Unter den Linden 6, 10117 Berlin", lat=52.5180, lon=13.3936,
         hours="Mo-Fr 08:00-22:00; Sa 10:00-18:00", slots=8),
]


def log(text):
    print(f"demo: {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def luhn_complete(partial):
    """Appends the Luhn check digit to `partial`."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def random_card_number(rng, prefix):
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(prefix)))
    return luhn_complete(body)


class Run:
    """Owns every process and folder of one demo run; stop() ends them all."""

    def __init__(self, work):
        self.work = work
        self.procs = []
        self.pg_dir = work / "pg"

    def start(self, name, argv):
        logf = open(self.work / f"{name}.log", "ab")
        proc = subprocess.Popen([str(a) for a in argv], stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        self.procs.append((name, proc))
        return proc

    def run(self, argv, stdin=None):
        result = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(str(argv[0])).name} failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if (self.pg_dir / "port").exists():
            checkpoint(self.pg_dir)
            subprocess.run([TOOLS / "pg-cluster", "stop", self.pg_dir], capture_output=True)
            keep_pg_data_inside(self.pg_dir)


def checkpoint(pg_dir):
    """Writes every change to the data files, so WAL and heap both hold the run's last state."""
    psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    conninfo = pg_dir / "conninfo"
    if psql and conninfo.exists():
        subprocess.run([psql[-1], conninfo.read_text().strip(), "-qc", "CHECKPOINT"],
                       capture_output=True)


def keep_pg_data_inside(pg_dir):
    """pg-cluster may keep the server's files in /tmp (linked from pg_dir/pg) when the postgres
    user cannot enter the run's folder; once stopped, they are moved into the run's folder."""
    link = pg_dir / "pg"
    if link.is_symlink():
        target = link.resolve()
        link.unlink()
        shutil.move(str(target), str(link))


def wait_for(what, condition, timeout_s, procs=()):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        for name, proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.1)
    return condition()


def physical_places(sim_root):
    """Where the simulator physically holds each card: {card name: place}."""
    places = {}
    for place, folder in [("tray", sim_root / "intake"), ("bin", sim_root / "bin"),
                          ("jam", sim_root / "jam"), ("transit", sim_root / "transit")]:
        if folder.is_dir():
            for card in folder.iterdir():
                places[card.name] = place
    slots = sim_root / "slots"
    if slots.is_dir():
        for slot in slots.iterdir():
            for card in slot.iterdir():
                if card.is_dir():
                    places[card.name] = f"slot:{int(slot.name)}"
    return places


def parse_tsv(text, columns):
    rows = []
    for line in text.splitlines():
        if line.strip():
            rows.append(dict(zip(columns, line.split("\t"))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="card numbers and images")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for the cards")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="run in DIR (empty or new) and leave every file of the run there, "
                             "with DIR/dropped.tsv the only one holding card numbers")
    parser.add_argument("--issuer-list", metavar="FILE", type=Path,
                        help="also write every enrolled number (holder TAB number) to FILE, "
                             "outside the run's folder (for tests that search for leaks)")
    parser.add_argument("--serve", action="store_true",
                        help="after the drops, keep the system running until SIGINT/SIGTERM; "
                             "prints 'serving: kiosk=HOST:PORT http=HOST:PORT' once ready")
    args = parser.parse_args()
    caller_dir = Path(os.environ.get("LOSTCARD_CALLER_DIR") or Path.cwd())
    if args.issuer_list:
        args.issuer_list = (caller_dir / args.issuer_list).resolve()

    if args.keep:
        work = (caller_dir / args.keep).resolve()
        if work.exists() and any(work.iterdir()):
            raise RuntimeError(f"--keep {work}: the folder is not empty")
    else:
        work = ROOT / "build" / "demo-run"
        if (work / "pg").exists():
            subprocess.run([TOOLS / "pg-cluster", "destroy", work / "pg"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    if args.issuer_list and args.issuer_list.is_relative_to(work):
        raise RuntimeError("--issuer-list must be outside the run's folder")
    work.mkdir(parents=True, exist_ok=True)
    run = Run(work)
    # The finder's own working files (the numbers to print on the cards, the photos as made)
    # hold card numbers: they stay out of the run's folder.
    finder_private = Path(tempfile.mkdtemp(prefix="lostcard-finder-"))
    try:
        ok = demo(run, work, args, finder_private)
    finally:
        run.stop()
        shutil.rmtree(finder_private, ignore_errors=True)
    if args.keep:
        log(f"every file of the run is in {work}")
    return 0 if ok else 1


def demo(run, work, args, finder_private):
    rng = random.Random(args.seed)

    # The cards the finder will drop: one per holder, one of nobody we know, one unreadable.
    cards = []  # dicts: name, number (None = unreadable), holder, issuer, kiosk
    for i, (holder, _, issuer) in enumerate(HOLDERS):
        cards.append(dict(name=f"card-{holder[7:]}", number=random_card_number(rng, "4" if i % 2 else "5"),
                          holder=holder, issuer=issuer))
    cards.append(dict(name="card-stranger", number=random_card_number(rng, "4"), holder=None,
                      issuer=None))
    cards.append(dict(name="card-scratched", number=None, holder=None, issuer=None))
    for i, card in enumerate(cards):
        card["kiosk"] = KIOSKS[i % len(KIOSKS)]["id"]

    log("starting a private PostgreSQL")
    conninfo = run.run([TOOLS / "pg-cluster", "start", run.pg_dir]).strip()

    log("making the fleet CA, the cloud's certificate and one per kiosk")
    pki = work / "pki"
    run.run([TOOLS / "pki", "init", pki])
    run.run([TOOLS / "pki", "server", pki, "localhost", "127.0.0.1"])
    for kiosk in KIOSKS:
        run.run([TOOLS / "pki", "kiosk", pki, kiosk["id"]])
    card_key = work / "card.key"
    card_key.write_text(f"demo-1 {secrets.token_hex(32)}\n")
    card_key.chmod(0o600)
    # Seals the photos the cloud keeps of difficult cards (image_vault.hpp).
    image_key = work / "image.key"
    image_key.write_text(f"demo-img-1 {secrets.token_hex(32)}\n")
    image_key.chmod(0o600)

    log("photographing the cards as the boxes' cameras will see them")
    numbers_file = finder_private / "finder-cards.tsv"
    numbers_file.write_text("".join(f"{c['name']}\t{c['number'] or '-'}\n" for c in cards))
    photos = finder_private / "cards"
    run.run([BIN / "lostcard-cardgen", "--seed", args.seed, "--numbers", numbers_file,
             "--out", photos])

    sink_port = free_port()
    log("enrolling issuers, holders, cards and kiosks")
    admin = [BIN / "lostcard-admin", "--db", conninfo, "--card-key-file", card_key]
    run.run(admin + ["migrate"])
    for issuer_id, issuer_name in ISSUERS:
        run.run(admin + ["add-issuer", issuer_id, issuer_name])
    secrets_file = work / "holder-secrets.tsv"
    with open(secrets_file, "w") as f:
        for holder_id, name, _ in HOLDERS:
            secret = secrets.token_hex(24)
            run.run(admin + ["add-holder", holder_id, name,
                             f"http://127.0.0.1:{sink_port}/holders/{holder_id}", secret])
            f.write(f"{holder_id}\t{secret}\n")
    enrolled = "".join(f"{c['issuer']}\t{c['holder']}\t{c['number']}\n" for c in cards if c["holder"])
    # Issuers enroll many more cards than are ever lost.
    for _ in range(20):
        holder_id, _, issuer = HOLDERS[rng.randrange(len(HOLDERS))]
        enrolled += f"{issuer}\t{holder_id}\t{random_card_number(rng, '5')}\n"
    run.run(admin + ["add-cards"], stdin=enrolled)
    if args.issuer_list:
        args.issuer_list.write_text("".join(
            f"{line.split(chr(9))[1]}\t{line.split(chr(9))[2]}\n" for line in enrolled.splitlines()))
    for k in KIOSKS:
        run.run(admin + ["add-kiosk", k["id"], "--name", k["name"], "--address", k["address"],
                         "--lat", k["lat"], "--lon", k["lon"], "--hours", k["hours"],
                         "--slots", k["slots"]])

    # People for the HTTPS API: one per role (passwords made here, kept in the run's folder).
    people = [  # login, role options, what they see
        ("ada", ["--role", "holder", "--holder", "holder-ada"], "her own deposits"),
        ("olga", ["--role", "operator", "--kiosk", KIOSKS[0]["id"]],
         f"the deposits of {KIOSKS[0]['id']} only"),
        ("ines", ["--role", "issuer_staff", "--issuer", "nordbank"], "nordbank's cards"),
    ]
    accounts = {}
    for login, options, _ in people:
        accounts[login] = secrets.token_urlsafe(12)
        run.run(admin + ["add-account", login] + options, stdin=accounts[login] + "\n")
    accounts_file = work / "accounts.tsv"
    accounts_file.write_text("".join(f"{login}\t{password}\n" for login, password in accounts.items()))
    accounts_file.chmod(0o600)

    log("starting the holders' phones (webhook receiver), the cloud and two kiosks")
    notices_file = work / "notices.jsonl"
    sink = run.start("phones", [BIN / "lostcard-webhook-sink", "--listen", f"127.0.0.1:{sink_port}",
                                "--secrets", secrets_file, "--out", notices_file])
    port_file = work / "cloud.port"
    http_port_file = work / "cloud.http-port"
    cloud = run.start("cloud", [BIN / "lostcard-cloud", "--db", conninfo, "--listen", "127.0.0.1:0",
                                "--port-file", port_file, "--ca", pki / "ca.crt",
                                "--cert", pki / "server" / "localhost.crt",
                                "--key", pki / "server" / "localhost.key",
                                "--crl", pki / "crl.pem",  # tools/pki init made it (none revoked)
                                "--card-key-file", card_key, "--models-dir", ROOT / "models",
                                "--image-key-file", image_key,
                                "--http-listen", "127.0.0.1:0", "--http-port-file", http_port_file])
    procs = [("phones", sink), ("cloud", cloud)]
    if not wait_for("the cloud", lambda: port_file.exists() and port_file.read_text().strip(), 60, procs):
        raise RuntimeError("the cloud did not start (see build/demo-run/cloud.log)")
    cloud_port = int(port_file.read_text())
    if not wait_for("the cloud's API", lambda: http_port_file.exists() and http_port_file.read_text().strip(), 60, procs):
        raise RuntimeError("the cloud's API did not start (see cloud.log)")
    http_port = int(http_port_file.read_text())

    sims = {}
    for k in KIOSKS:
        sim_root = work / k["id"] / "box"
        sims[k["id"]] = sim_root
        proc = run.start(k["id"], [
            BIN / "lostcard-kiosk", "--id", k["id"], "--cloud", f"127.0.0.1:{cloud_port}",
            "--server-name", "localhost", "--ca", pki / "ca.crt",
            "--cert", pki / "kiosks" / f"{k['id']}.crt", "--key", pki / "kiosks" / f"{k['id']}.key",
            "--journal", work / k["id"] / "journal.sqlite", "--hw", "sim", "--sim-root", sim_root,
            "--slots", k["slots"], "--heartbeat-ms", 1000])
        procs.append((k["id"], proc))

    # The finder drops one card at a time into each box, waiting for the box to take it.
    staging = work / "finder"
    staging.mkdir()
    for card in cards:
        intake = sims[card["kiosk"]] / "intake"
        wait_for(f"{card['kiosk']}'s intake", lambda: intake.is_dir() and not any(intake.iterdir()),
                 args.timeout, procs)
        shutil.copytree(photos / card["name"], staging / card["name"])
        os.rename(staging / card["name"], intake / card["name"])
        log(f"dropped {card['name']} into {card['kiosk']}")

    expected_notices = sum(1 for c in cards if c["holder"])

    def notices():
        if not notices_file.exists():
            return []
        return [json.loads(line) for line in notices_file.read_text().splitlines() if line.strip()]

    def cloud_deposits():
        return parse_tsv(run.run(admin + ["deposits"]),
                         ["deposit", "kiosk", "status", "decision", "location", "last4", "reason"])

    def settled():
        deposits = cloud_deposits()
        return (len(deposits) == len(cards) and all(d["status"] == "stored" for d in deposits)
                and len(notices()) >= expected_notices
                and all(not any((sims[k] / "intake").iterdir()) for k in sims))

    if not wait_for("every card stored and every notice delivered", settled, args.timeout, procs):
        log("timed out waiting for the cards to settle")

    # What each holder read on their phone (the receiver's own status lines left out).
    print()
    for line in (work / "phones.log").read_text(errors="replace").splitlines():
        if not line.startswith("listening on"):
            print(line)
    print()

    kept = len(run.run(admin + ["difficult-images"]).splitlines())
    log(f"{kept} photos of difficult cards kept, sealed")
    # The people's API: the holder sees exactly her own card (before the summary line, which
    # stays the run's last).
    api_ok = True
    api = Api(http_port, pki / "ca.crt")
    ada_card = next(c for c in cards if c["holder"] == "holder-ada")
    try:
        token = api.login("ada", accounts["ada"])
        seen = api.get("/v1/holder/deposits", token)["deposits"]
        log(f"api: ada sees {len(seen)} deposit(s): "
            + ", ".join(f"card ending {d['last4']} at {d['kiosk_id']} ({d['status']})" for d in seen))
        if [d["last4"] for d in seen] != [ada_card["number"][-4:]]:
            api_ok = False
            log("WRONG: the API does not show ada exactly her own card")
    except (OSError, KeyError, ValueError) as e:
        api_ok = False
        log(f"WRONG: the API failed: {e}")
    ok = account(run, work, cards, sims, cloud_deposits(), notices()) and api_ok
    if args.serve and not serve(procs, cloud_port, http_port, pki, people, accounts):
        ok = False
    return ok


class Api:
    """A small client of the cloud's HTTPS API (verifies the server against the fleet CA)."""

    def __init__(self, port, ca_file):
        self.base = f"https://127.0.0.1:{port}"
        self.tls = ssl.create_default_context(cafile=str(ca_file))

    def request(self, method, path, token=None, body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, context=self.tls, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def login(self, login, password):
        return self.request("POST", "/v1/auth/login", body={"login": login, "password": password})["token"]

    def get(self, path, token):
        return self.request("GET", path, token=token)


def serve(procs, cloud_port, http_port, pki, people, accounts):
    """Keeps the system running until SIGINT or SIGTERM; False when a process died before."""
    stop = []
    for signo in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signo, lambda s, _f: stop.append(s))
    print(f"serving: kiosk=127.0.0.1:{cloud_port} http=127.0.0.1:{http_port}", flush=True)
    print(f"  log in (tokens last 15 minutes), e.g. as {people[0][0]}:", flush=True)
    print(f"    curl --cacert {pki / 'ca.crt'} -H 'Content-Type: application/json' \\\n"
          f"      -d '{{\"login\": \"{people[0][0]}\", \"password\": \"{accounts[people[0][0]]}\"}}' "
          f"https://127.0.0.1:{http_port}/v1/auth/login", flush=True)
    print(f"    curl --cacert {pki / 'ca.crt'} -H 'Authorization: Bearer TOKEN' "
          f"https://127.0.0.1:{http_port}/v1/holder/deposits", flush=True)
    for login, _, sees in people:
        print(f"  account {login} password {accounts[login]}: sees {sees}", flush=True)
    print("  (Ctrl-C or SIGTERM stops everything)", flush=True)
    while not stop:
        for name, proc in procs:
            if proc.poll() is not None:
                log(f"{name} exited with {proc.returncode}; stopping")
                return False
        time.sleep(0.2)
    log(f"signal {stop[0]}: stopping")
    return True


def write_dropped(path, cards, journals):
    """The finder's list: each dropped card's deposit id and number. A kiosk journals deposits in
    the order the cards went in, and the finder dropped one card at a time into each box."""
    lines = []
    for kiosk_id, rows in journals.items():
        dropped = [c for c in cards if c["kiosk"] == kiosk_id]
        for i, card in enumerate(dropped):
            deposit = rows[i]["deposit"] if len(rows) == len(dropped) else "unknown"
            lines.append(f"{deposit}\t{card['number'] or '-'}\n")
    path.write_text("".join(lines))


def account(run, work, cards, sims, deposits, notices):
    """Checks every card's place against the kiosk journals and the cloud, then summarizes."""
    cloud_by_deposit = {d["deposit"]: d for d in deposits}
    ok = True
    lost = 0
    difficult = 0
    delivered = {}
    for n in notices:
        delivered.setdefault(n["notice"]["depositId"], []).append(n)

    journals = {}
    for kiosk_id in sims:
        out = run.run([BIN / "lostcard-kiosk", "--journal", work / kiosk_id / "journal.sqlite",
                       "--print-journal"])
        journals[kiosk_id] = parse_tsv(out, ["deposit", "state", "location", "last4", "reason"])
    write_dropped(work / "dropped.tsv", cards, journals)

    for card in cards:
        kiosk_id = card["kiosk"]
        place = physical_places(sims[kiosk_id]).get(card["name"], "nowhere")
        journal_at_place = [j for j in journals[kiosk_id] if j["location"] == place]
        # A slot holds one card, so the journal names its deposit; the bin holds several, so
        # the counts must agree.
        known = bool(journal_at_place) and place not in ("nowhere", "jam", "transit") and all(
            cloud_by_deposit.get(j["deposit"], {}).get("location") == place
            and cloud_by_deposit[j["deposit"]]["kiosk"] == kiosk_id for j in journal_at_place)
        if not known:
            lost += 1
            ok = False
            log(f"LOST {card['name']}: physically {place} in {kiosk_id}, "
                f"journal {[j['deposit'] for j in journal_at_place]}")
            continue
        if place == "bin":
            difficult += 1
        if card["holder"]:
            if not place.startswith("slot:"):
                ok = False
                log(f"WRONG {card['name']} of {card['holder']} went to {place}, not a slot")
                continue
            deposit = journal_at_place[0]["deposit"]
            got = delivered.get(deposit, [])
            right = [n for n in got if n["holder_id"] == card["holder"]
                     and n["notice"]["kiosk"]["kioskId"] == kiosk_id
                     and n["notice"]["cardLast4"] == card["number"][-4:]]
            if len(got) != 1 or len(right) != 1:
                ok = False
                log(f"WRONG {card['name']}: {len(got)} notices, {len(right)} to {card['holder']} "
                    f"naming {kiosk_id}")
        elif place != "bin":
            ok = False
            log(f"WRONG {card['name']} (no holder) went to {place}, not the bin")

    bin_count_physical = sum(1 for k in sims for p in physical_places(sims[k]).values() if p == "bin")
    bin_count_journal = sum(1 for k in journals for j in journals[k] if j["location"] == "bin")
    if bin_count_physical != bin_count_journal:
        ok = False
        log(f"bins hold {bin_count_physical} cards but the journals say {bin_count_journal}")

    notified = len({n["notice"]["depositId"] for n in notices})
    print(f"demo: dropped={len(cards)} notified={notified} difficult={difficult} lost={lost}",
          flush=True)
    return ok and lost == 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        sys.exit(1)
