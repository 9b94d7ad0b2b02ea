#!/usr/bin/env python3
"""The lostcard demo: a finder drops cards into two street boxes; holders get notices.

Run through tools/demo (which builds first). Everything runs on this machine, on real parts:
a private PostgreSQL cluster, lostcard-cloud over mutual TLS, two lostcard-kiosk daemons on
simulated hardware (their physical state is folders under the run directory), and
lostcard-webhook-sink standing for the holders' phones.

It ends with one line, `demo: dropped=N notified=R difficult=D lost=L`, and exits 0 only when
no card is lost and every card went where it should: enrolled cards to a slot with a notice to
their own holder naming the right box, the others to the difficult-card bin.
"""
import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bin"
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
            subprocess.run([TOOLS / "pg-cluster", "stop", self.pg_dir], capture_output=True)


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
    args = parser.parse_args()

    work = ROOT / "build" / "demo-run"
    if (work / "pg").exists():
        subprocess.run([TOOLS / "pg-cluster", "destroy", work / "pg"], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run = Run(work)
    try:
        ok = demo(run, work, args)
    finally:
        run.stop()
    return 0 if ok else 1


def demo(run, work, args):
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

    log("photographing the cards as the boxes' cameras will see them")
    numbers_file = work / "finder-cards.tsv"
    numbers_file.write_text("".join(f"{c['name']}\t{c['number'] or '-'}\n" for c in cards))
    run.run([BIN / "lostcard-cardgen", "--seed", args.seed, "--numbers", numbers_file,
             "--out", work / "cards"])

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
    for k in KIOSKS:
        run.run(admin + ["add-kiosk", k["id"], "--name", k["name"], "--address", k["address"],
                         "--lat", k["lat"], "--lon", k["lon"], "--hours", k["hours"],
                         "--slots", k["slots"]])

    log("starting the holders' phones (webhook receiver), the cloud and two kiosks")
    notices_file = work / "notices.jsonl"
    sink = run.start("phones", [BIN / "lostcard-webhook-sink", "--listen", f"127.0.0.1:{sink_port}",
                                "--secrets", secrets_file, "--out", notices_file])
    port_file = work / "cloud.port"
    cloud = run.start("cloud", [BIN / "lostcard-cloud", "--db", conninfo, "--listen", "127.0.0.1:0",
                                "--port-file", port_file, "--ca", pki / "ca.crt",
                                "--cert", pki / "server" / "localhost.crt",
                                "--key", pki / "server" / "localhost.key",
                                "--card-key-file", card_key, "--models-dir", ROOT / "models"])
    procs = [("phones", sink), ("cloud", cloud)]
    if not wait_for("the cloud", lambda: port_file.exists() and port_file.read_text().strip(), 60, procs):
        raise RuntimeError("the cloud did not start (see build/demo-run/cloud.log)")
    cloud_port = int(port_file.read_text())

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
        shutil.copytree(work / "cards" / card["name"], staging / card["name"])
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

    return account(run, work, cards, sims, cloud_deposits(), notices())


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
