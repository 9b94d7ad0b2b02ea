#!/usr/bin/env python3
"""The lostcard demo: every person's flow, from the finder's drop to the holder's pickup.

Run through tools/demo (which builds first). Everything runs on this machine, on real parts:
a private PostgreSQL cluster, lostcard-cloud over mutual TLS and its people's HTTPS API, two
lostcard-kiosk daemons on simulated hardware (their physical state is folders under the run
directory, acted on with lostcard-simbox as people in front of the box would), and two
lostcard-webhook-sink processes standing for the holders' phones and the issuers' systems.

The run is a list of steps (STEPS), each done by one person and printed as a section headed
"---- <person>: <what they do> ----" with what that person sees: the issuer's enrollment report
and the events its webhook receives; the finder's drops and the box's screens; every notice as
its holder reads it (the card named by its last four digits only); the holder's question to
the API, her inbox, a wrong and then the right code typed at the box; the operator's fleet,
alerts, difficult cards, one redacted photo, a resolution by number, a card sent back to its
issuer, the bin emptied at the box and the resolved card put back in a slot (its holder then
told); at the end, what each box holds and shows.

It ends with one line, `demo: dropped=N notified=R difficult=D picked_up=P lost=L`, and exits 0
only when no card is lost and every step saw what it should: enrolled readable cards in a slot
with a notice to their own holder naming the right box, the others in the difficult-card bin,
the wrong code refused and the right one opening that slot, and so on.

--keep DIR runs in DIR (empty or new) instead of build/demo-run and leaves there every file the
run made: the PostgreSQL data directory (checkpointed and cleanly stopped), every process's log,
the kiosks' journals and simulated boxes, the keys and certificates. DIR/dropped.tsv (deposit id
TAB card number) is the finder's own list of what was dropped: the only file of the run that
holds card numbers (the finder's working files live in a private temporary folder, removed at
the end). tests/e2e/no_number_in_clear_e2etest.cpp searches the rest for numbers.

The demo makes one holder, one operator and one issuer staff account (passwords generated, kept
in accounts.tsv of the run's folder), an API key for one issuer's systems and an operator's box
code (neither kept). --serve then keeps everything running until SIGINT or SIGTERM and prints,
once ready, `serving: kiosk=HOST:PORT http=HOST:PORT` and how to log in.
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
# Nordbank's systems enroll its cards through the API with their key; City Transit's are
# enrolled with lostcard-admin.
API_ISSUER = "nordbank"
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
# The people of the API (passwords made here, kept in the run's folder): login, role options,
# what they see.
PEOPLE = [
    ("ada", ["--role", "holder", "--holder", "holder-ada"], "her own deposits"),
    ("olga", ["--role", "operator", "--kiosk", KIOSKS[0]["id"]],
     f"the deposits of {KIOSKS[0]['id']} only"),
    ("ines", ["--role", "issuer_staff", "--issuer", "nordbank"], "nordbank's cards"),
]
HOLDER_LOGIN, OPERATOR_LOGIN = "ada", "olga"

# The run, in order: (who, step). Each step is a method of Demo and prints what that person sees.
STEPS = [
    ("issuer", "issuer_enrolls"),
    ("finder", "finder_drops"),
    ("holder", "holders_read_notices"),
    ("holder", "holder_asks"),
    ("holder", "holder_collects"),
    ("operator", "operator_reviews"),
    ("operator", "operator_resolves"),
    ("operator", "operator_empties_bin"),
    ("operator", "restock_at_box"),
    ("issuer", "issuer_hears_back"),
    ("box", "boxes_at_the_end"),
]


def log(text):
    print(f"demo: {text}", flush=True)


def say(text):
    """One line of what the current step's person sees."""
    print(f"  {text}", flush=True)


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
    """Where the simulator physically holds each card: {card name: place}; "out" is out of the
    box, in a person's hands (taken from a slot or the bin)."""
    places = {}
    for place, folder in [("tray", sim_root / "intake"), ("bin", sim_root / "bin"),
                          ("jam", sim_root / "jam"), ("transit", sim_root / "transit"),
                          ("out", sim_root / "collected")]:
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


def read_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Wrong(Exception):
    """A step saw something it should not: the run fails, the steps after it are skipped."""


def expect(condition, what):
    if not condition:
        raise Wrong(what)


class Api:
    """A small client of the cloud's HTTPS API (verifies the server against the fleet CA)."""

    def __init__(self, port, ca_file):
        self.base = f"https://127.0.0.1:{port}"
        self.tls = ssl.create_default_context(cafile=str(ca_file))

    def request(self, method, path, token=None, body=None, content_type="application/json"):
        """The answer's bytes; a refusal raises Wrong with the cloud's reason."""
        headers = {"Content-Type": content_type} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=30) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            reason = e.read().decode(errors="replace")
            raise Wrong(f"{method} {path}: {e.code} {reason}") from None

    def login(self, login, password):
        return self.post("/v1/auth/login", body={"login": login, "password": password})["token"]

    def get(self, path, token):
        return json.loads(self.request("GET", path, token=token) or b"{}")

    def post(self, path, token=None, body=None):
        return json.loads(self.request("POST", path, token=token, body=body) or b"{}")


class Box:
    """One simulated box as the people in front of it use it: lostcard-simbox acts on it (the
    keypad, a slot, the bin door), and its screens are read back from the kiosk's log, where the
    simulated display writes every text it shows."""

    def __init__(self, kiosk_id, sim_root, kiosk_log, procs, timeout_s):
        self.kiosk_id = kiosk_id
        self.sim_root = sim_root
        self.kiosk_log = kiosk_log
        self.procs = procs  # the run's processes: waiting stops when one of them dies
        self.timeout_s = timeout_s
        self.seen = 0  # bytes of the log already read for screens

    def act(self, *command):
        result = subprocess.run([str(BIN / "lostcard-simbox"), "--root", str(self.sim_root)]
                                + [str(c) for c in command], capture_output=True, text=True)
        expect(result.returncode == 0, f"lostcard-simbox {' '.join(map(str, command[:1]))} "
               f"failed: {result.stderr.strip()}")
        return result.stdout

    def unlocked_slots(self):
        """The slots whose door the kiosk has unlocked (the simulator keeps each door's last
        unlock)."""
        return sorted(int(f.name[len("unlocked-slot-"):])
                      for f in (self.sim_root / "state").glob("unlocked-slot-*"))

    def screens(self):
        """The texts shown since the last call, in order."""
        data = self.kiosk_log.read_bytes()[self.seen:]
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self.seen += end
        shown = []
        for line in data[:end].decode(errors="replace").splitlines():
            at = line.find('display: "')
            if at >= 0 and line.endswith('"'):
                shown.append(line[at + len('display: "'):-1])
        return shown

    def show_until(self, part):
        """Prints what the box shows until a text containing `part` (Wrong if it never does)."""
        shown = []

        def arrived():
            shown.extend(self.screens())
            return any(part in text for text in shown)

        ok = wait_for(f"{self.kiosk_id} to show '{part}'", arrived, self.timeout_s, self.procs)
        for text in shown:
            say(f"box {self.kiosk_id} shows: \"{text}\"")
        expect(ok, f"{self.kiosk_id} never showed '{part}'")


class Demo:
    """One run of every person's flow; the state the steps share."""

    def __init__(self, run, work, args, finder_private):
        self.run = run
        self.work = work
        self.args = args
        self.finder_private = finder_private
        self.rng = random.Random(args.seed)
        self.procs = []
        self.facts = dict(picked_up=0)  # what the summary line counts
        self.picked_up = []  # the cards their holders took back

    # ---- setting up: the cards, the keys, the registry, the processes ----

    def make_cards(self):
        # The cards the finder will drop: one per holder, one of nobody we know, one unreadable,
        # and one of Alan's so worn that its number cannot be read (the operator reads it).
        rng = self.rng
        cards = []  # name, number (None: none printed), readable, holder, issuer, kiosk
        for i, (holder, _, issuer) in enumerate(HOLDERS):
            cards.append(dict(name=f"card-{holder[7:]}",
                              number=random_card_number(rng, "4" if i % 2 else "5"),
                              readable=True, holder=holder, issuer=issuer))
        cards.append(dict(name="card-stranger", number=random_card_number(rng, "4"),
                          readable=True, holder=None, issuer=None))
        cards.append(dict(name="card-scratched", number=None, readable=False, holder=None,
                          issuer=None))
        cards.append(dict(name="card-alan-worn", number=random_card_number(rng, "4"),
                          readable=False, holder="holder-alan", issuer="nordbank"))
        for i, card in enumerate(cards):
            card["kiosk"] = KIOSKS[i % len(KIOSKS)]["id"]
        self.cards = cards
        self.card = {c["name"]: c for c in cards}

    def set_up(self):
        run, work = self.run, self.work
        self.make_cards()
        log("starting a private PostgreSQL")
        self.conninfo = run.run([TOOLS / "pg-cluster", "start", run.pg_dir]).strip()

        log("making the fleet CA, the cloud's certificate and one per kiosk")
        self.pki = pki = work / "pki"
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
        numbers_file = self.finder_private / "finder-cards.tsv"
        numbers_file.write_text("".join(
            f"{c['name']}\t{c['number'] if c['readable'] else '-'}\n" for c in self.cards))
        self.photos = self.finder_private / "cards"
        run.run([BIN / "lostcard-cardgen", "--seed", self.args.seed, "--numbers", numbers_file,
                 "--out", self.photos])

        log("registering issuers, holders, kiosks and the people's accounts")
        phones_port, issuers_port = free_port(), free_port()
        self.admin = admin = [BIN / "lostcard-admin", "--db", self.conninfo,
                              "--card-key-file", card_key]
        run.run(admin + ["migrate"])
        for issuer_id, issuer_name in ISSUERS:
            run.run(admin + ["add-issuer", issuer_id, issuer_name])
        phone_secrets = work / "holder-secrets.tsv"
        with open(phone_secrets, "w") as f:
            for holder_id, name, _ in HOLDERS:
                secret = secrets.token_hex(24)
                run.run(admin + ["add-holder", holder_id, name,
                                 f"http://127.0.0.1:{phones_port}/holders/{holder_id}", secret])
                f.write(f"{holder_id}\t{secret}\n")
        issuer_secrets = work / "issuer-secrets.tsv"
        with open(issuer_secrets, "w") as f:
            for issuer_id, _ in ISSUERS:
                secret = secrets.token_hex(24)
                run.run(admin + ["set-issuer-webhook", issuer_id,
                                 f"http://127.0.0.1:{issuers_port}/issuers/{issuer_id}",
                                 "--secret-stdin"], stdin=secret + "\n")
                f.write(f"issuer:{issuer_id}\t{secret}\n")
        for k in KIOSKS:
            run.run(admin + ["add-kiosk", k["id"], "--name", k["name"], "--address", k["address"],
                             "--lat", k["lat"], "--lon", k["lon"], "--hours", k["hours"],
                             "--slots", k["slots"]])
        self.accounts = {}
        for login, options, _ in PEOPLE:
            self.accounts[login] = secrets.token_urlsafe(12)
            run.run(admin + ["add-account", login] + options, stdin=self.accounts[login] + "\n")
        accounts_file = work / "accounts.tsv"
        accounts_file.write_text("".join(f"{login}\t{password}\n"
                                         for login, password in self.accounts.items()))
        accounts_file.chmod(0o600)
        # The operator's code at the box, and the issuer's API key: shown once, not kept.
        self.operator_code = "".join(str(secrets.randbelow(10)) for _ in range(10))
        run.run(admin + ["set-operator-code", OPERATOR_LOGIN], stdin=self.operator_code + "\n")
        self.issuer_key = run.run(admin + ["add-issuer-key", API_ISSUER]).strip()

        log("starting the holders' phones and the issuers' systems (webhook receivers), "
            "the cloud and two kiosks")
        self.notices_file = work / "notices.jsonl"
        self.events_file = work / "issuer-events.jsonl"
        self.procs.append(("phones", run.start("phones", [
            BIN / "lostcard-webhook-sink", "--listen", f"127.0.0.1:{phones_port}",
            "--secrets", phone_secrets, "--out", self.notices_file])))
        self.procs.append(("issuers", run.start("issuers", [
            BIN / "lostcard-webhook-sink", "--listen", f"127.0.0.1:{issuers_port}",
            "--secrets", issuer_secrets, "--out", self.events_file])))
        port_file = work / "cloud.port"
        http_port_file = work / "cloud.http-port"
        self.procs.append(("cloud", run.start("cloud", [
            BIN / "lostcard-cloud", "--db", self.conninfo, "--listen", "127.0.0.1:0",
            "--port-file", port_file, "--ca", pki / "ca.crt",
            "--cert", pki / "server" / "localhost.crt", "--key", pki / "server" / "localhost.key",
            "--crl", pki / "crl.pem",  # tools/pki init made it (none revoked)
            "--card-key-file", card_key, "--models-dir", ROOT / "models",
            "--allow-internal-webhooks",  # the phones and the issuer's webhook are on 127.0.0.1
            "--image-key-file", image_key,
            "--http-listen", "127.0.0.1:0", "--http-port-file", http_port_file])))
        if not wait_for("the cloud", lambda: port_file.exists() and port_file.read_text().strip(),
                        60, self.procs):
            raise RuntimeError(f"the cloud did not start (see {work / 'cloud.log'})")
        self.cloud_port = int(port_file.read_text())
        if not wait_for("the cloud's API",
                        lambda: http_port_file.exists() and http_port_file.read_text().strip(),
                        60, self.procs):
            raise RuntimeError(f"the cloud's API did not start (see {work / 'cloud.log'})")
        self.http_port = int(http_port_file.read_text())
        self.api = Api(self.http_port, pki / "ca.crt")

        self.boxes = {}
        for k in KIOSKS:
            sim_root = work / k["id"] / "box"
            self.boxes[k["id"]] = Box(k["id"], sim_root, work / f"{k['id']}.log", self.procs,
                                      self.args.timeout)
            self.procs.append((k["id"], run.start(k["id"], [
                BIN / "lostcard-kiosk", "--id", k["id"], "--cloud", f"127.0.0.1:{self.cloud_port}",
                "--server-name", "localhost", "--ca", pki / "ca.crt",
                "--cert", pki / "kiosks" / f"{k['id']}.crt",
                "--key", pki / "kiosks" / f"{k['id']}.key",
                "--journal", work / k["id"] / "journal.sqlite", "--hw", "sim",
                "--sim-root", sim_root, "--slots", k["slots"], "--heartbeat-ms", 1000])))

    # ---- what the cloud, the kiosks and the simulated boxes record ----

    def cloud_deposits(self):
        return parse_tsv(self.run.run(self.admin + ["deposits"]),
                         ["deposit", "kiosk", "status", "decision", "location", "last4", "reason"])

    def cloud_status(self, deposit):
        return next((d["status"] for d in self.cloud_deposits() if d["deposit"] == deposit), None)

    def journals(self):
        out = {}
        for kiosk_id in self.boxes:
            text = self.run.run([BIN / "lostcard-kiosk", "--journal",
                                 self.work / kiosk_id / "journal.sqlite", "--print-journal"])
            out[kiosk_id] = parse_tsv(text, ["deposit", "state", "location", "last4", "reason"])
        return out

    def notices(self):
        return read_jsonl(self.notices_file)

    def wait_for(self, what, condition):
        expect(wait_for(what, condition, self.args.timeout, self.procs),
               f"timed out waiting for {what}")

    def login(self, who):
        """Logs `who` in and says who the cloud takes them for (GET /v1/me)."""
        token = self.api.login(who, self.accounts[who])
        me = self.api.get("/v1/me", token)
        scope = me.get("holder_id") or me.get("issuer_id") or ", ".join(me.get("kiosk_ids", []))
        say(f"{who} logs in: {me['role']} ({scope}), token valid until {me['token_expires_at']}")
        return token

    # ---- the steps ----

    def issuer_enrolls(self):
        """Nordbank's systems enroll its cards in bulk with their API key. City Transit's cards
        are enrolled with lostcard-admin; both issuers enroll many more cards than are ever
        lost."""
        rows = [(c["issuer"], c["holder"], c["number"]) for c in self.cards if c["holder"]]
        for _ in range(20):
            holder_id, _, issuer = HOLDERS[self.rng.randrange(len(HOLDERS))]
            rows.append((issuer, holder_id, random_card_number(self.rng, "5")))
        ours = [(holder, number) for issuer, holder, number in rows if issuer == API_ISSUER]
        # One row with a mistyped check digit: the report rejects it, with its line and why.
        typo = ours[-1][1][:-1] + str((int(ours[-1][1][-1]) + 1) % 10)
        csv = "holder_id,number\n" + "".join(f"{h},{n}\n" for h, n in ours + [("holder-ada", typo)])
        for attempt in ("send", "send the same file again (safe: nothing changes)"):
            report = json.loads(self.api.request("POST", "/v1/issuer/enrollments",
                                                 token=self.issuer_key, body=csv.encode(),
                                                 content_type="text/csv"))
            say(f"{API_ISSUER}'s systems {attempt}: {report.get('rows', 0)} rows, "
                f"enrolled={report.get('enrolled', 0)} unchanged={report.get('unchanged', 0)} "
                f"rejected={report.get('rejected', 0)}")
            for r in report.get("rejections", []):
                say(f"  line {r['line']}: {r['code']}: {r['reason']} (ending {r.get('last4', '')})")
        expect(report.get("unchanged") == len(ours) and report.get("rejected") == 1,
               f"the enrollment report is not what was sent: {report}")
        others = [r for r in rows if r[0] != API_ISSUER]
        self.run.run(self.admin + ["add-cards"],
                     stdin="".join(f"{i}\t{h}\t{n}\n" for i, h, n in others))
        say(f"citytransit enrolls {len(others)} cards with lostcard-admin add-cards")
        cards = self.api.get("/v1/issuer/cards", self.issuer_key)
        say(f"{API_ISSUER}'s systems see {len(cards.get('cards', []))} cards of theirs "
            "(GET /v1/issuer/cards: card id, holder, last four)")
        if self.args.issuer_list:
            self.args.issuer_list.write_text("".join(
                f"{h}\t{n}\n" for _, h, n in rows + [(API_ISSUER, "holder-ada", typo)]))

    def finder_drops(self):
        """Drops the cards, one at a time into each box. Then every card settles:
        stored in a slot with its notice delivered, or in the bin."""
        staging = self.work / "finder"
        staging.mkdir()
        for card in self.cards:
            box = self.boxes[card["kiosk"]]
            intake = box.sim_root / "intake"
            self.wait_for(f"{box.kiosk_id}'s intake",
                          lambda: intake.is_dir() and not any(intake.iterdir()))
            box.screens()  # what it showed before this card is not the finder's
            shutil.copytree(self.photos / card["name"], staging / card["name"])
            os.rename(staging / card["name"], intake / card["name"])
            say(f"drops {card['name']} into {card['kiosk']}")
            box.show_until("Thank you")

        expected_notices = sum(1 for c in self.cards if c["holder"] and c["readable"])

        def settled():
            deposits = self.cloud_deposits()
            return (len(deposits) == len(self.cards)
                    and all(d["status"] == "stored" for d in deposits)
                    and len(self.notices()) >= expected_notices
                    and all(not any((b.sim_root / "intake").iterdir())
                            for b in self.boxes.values()))

        if not wait_for("every card stored and every notice delivered", settled,
                        self.args.timeout, self.procs):
            log("timed out waiting for the cards to settle")
        kept = len(self.run.run(self.admin + ["difficult-images"]).splitlines())
        log(f"{kept} photos of difficult cards kept, sealed")
        self.check_placement()

    def holders_read_notices(self):
        """Every holder reads their notice on their phone. (The receiver's own status lines are
        left out.)"""
        for line in (self.work / "phones.log").read_text(errors="replace").splitlines():
            if not line.startswith("listening on"):
                say(line)

    def holder_asks(self):
        """Ada asks whether a box holds her card and reads her inbox. The cloud pushes her
        notice again, with a new code (the old one was delivered, and codes are kept only as
        hashes)."""
        token = self.login(HOLDER_LOGIN)
        self.holder_token = token
        mine = self.api.get("/v1/holder/cards", token)["cards"]
        say(f"her {len(mine)} cards: " + ", ".join(
            f"{c['issuer_name']} ending {c['last4']} (enrolled by {c['enrolled_by']})"
            for c in mine))
        card = self.card["card-ada"]
        asked = next(c for c in mine if c["last4"] == card["number"][-4:])
        answer = self.api.post("/v1/holder/card-queries", token, {"card_id": asked["card_id"]})
        expect(answer.get("found") and len(answer["deposits"]) == 1,
               f"the API does not find ada's card in a box: {answer}")
        found = answer["deposits"][0]
        kiosk = found["kiosk"]
        say(f"is my card ending {found['last4']} in a box? yes: {kiosk['name']}, "
            f"{kiosk['address']} ({kiosk['opening_hours']}), slot {found['slot_number']}, "
            f"{kiosk['map_url']}; notice: {found['notice']}")
        expect(kiosk["kiosk_id"] == card["kiosk"], f"the API names {kiosk['kiosk_id']}, not "
               f"{card['kiosk']}")
        inbox = self.api.get("/v1/holder/notices", token)["notices"]
        say("her inbox: " + ", ".join(f"{n['notice_id'][:8]}… {n['state']}" for n in inbox))
        seen = self.api.get("/v1/holder/deposits", token)["deposits"]
        expect([d["last4"] for d in seen] == [card["number"][-4:]],
               "the API does not show ada exactly her own card")
        notice_id = found["notice_id"]
        self.wait_for("ada's new notice on her phone",
                      lambda: any(n["notice"]["noticeId"] == notice_id for n in self.notices()))
        notice = next(n["notice"] for n in self.notices() if n["notice"]["noticeId"] == notice_id)
        say(f"her phone receives notice {notice_id[:8]}…:")
        for line in notice["message"].splitlines():
            say(f"  {line}")
        self.ada_notice = notice

    def holder_collects(self):
        """Ada types a wrong code at the box, then the right one. Her slot's number first; the
        wrong code opens nothing, the right one that slot only; she takes her card and the
        deposit closes."""
        notice = self.ada_notice
        box = self.boxes[notice["kiosk"]["kioskId"]]
        slot = notice["slotNumber"]
        code = "".join(ch for ch in notice["pickupCode"] if ch.isdigit())  # shown grouped
        wrong = str((int(code[0]) + 1) % 10) + code[1:]
        box.screens()
        say(f"ada types slot {slot:02} and a wrong code {wrong}")
        box.act("type", f"{slot:02} {wrong}")
        box.show_until("Wrong code")
        expect(not box.unlocked_slots(), "a wrong code unlocked a slot")
        say(f"ada types slot {slot:02} and her code {code}")
        box.act("type", f"{slot:02} {code}")
        box.show_until("is open")
        expect(box.unlocked_slots() == [slot - 1], f"the code unlocked {box.unlocked_slots()}")
        taken = box.act("collect", slot - 1).strip()
        say(f"ada takes her card from slot {slot:02}")
        expect(taken == "card-ada", f"slot {slot:02} held {taken}, not ada's card")
        box.show_until("Thank you")
        deposit = notice["depositId"]
        self.wait_for("the cloud to record ada's card collected",
                      lambda: self.cloud_status(deposit) == "collected")
        self.facts["picked_up"] += 1
        self.picked_up.append(self.card[taken])
        seen = self.api.get("/v1/holder/deposits", self.holder_token)["deposits"]
        say("her deposits now: " + ", ".join(f"card ending {d['last4']} at {d['kiosk_id']} "
                                             f"({d['status']})" for d in seen))

    def operator_reviews(self):
        """Olga looks at her fleet, its alerts and its difficult cards. She opens one redacted
        photo."""
        token = self.login(OPERATOR_LOGIN)
        self.operator_token = token
        for k in self.api.get("/v1/operator/kiosks", token).get("kiosks", []):
            say(f"{k['kiosk_id']} ({k['name']}): {'online' if k.get('online') else 'OFFLINE'}, "
                f"last heartbeat {k.get('last_heartbeat_at', '-')}, "
                f"slots {k.get('slots_used', 0)}/{k.get('slot_count', 0)}, "
                f"bin {k.get('bin_count', 0)}/{k.get('bin_capacity', 0)}")
        alerts = self.api.get("/v1/operator/alerts", token).get("alerts", [])
        say("alerts: " + ("; ".join(f"{a['kiosk_id']} {a['kind']}: {a['message']}" for a in alerts)
                          or "none"))
        difficult = self.api.get("/v1/operator/difficult", token).get("cards", [])
        for d in difficult:
            ending = f", ending {d['last4']}" if d.get("last4") else ""
            say(f"difficult card {d['deposit_id'][:8]}… at {d['kiosk_id']} "
                f"{d.get('location', '')}: {d['reason']}{ending}, {d.get('images', 0)} photo(s)")
        expect(sorted(d["reason"] for d in difficult) == ["no_holder", "unreadable"],
               f"olga should see {KIOSKS[0]['id']}'s two difficult cards: {difficult}")
        worn = next(d for d in difficult if d["reason"] == "unreadable")
        expect(worn.get("images", 0) > 0, "no photo was kept of the unreadable card")
        photo = self.api.request("GET", f"/v1/operator/difficult/{worn['deposit_id']}/images/0",
                                 token=token)
        say(f"photo 0 of {worn['deposit_id'][:8]}…: a JPEG of {len(photo)} bytes (redacted: "
            "signature panel and security code blacked out)")
        expect(photo[:3] == b"\xff\xd8\xff", "the photo is not a JPEG")
        self.difficult = {d["reason"]: d["deposit_id"] for d in difficult}

    def operator_resolves(self):
        """Olga resolves the worn card by its number and sends the unknown one back. The number
        names the card and its holder (the card then waits to go back into a slot); the card of
        nobody enrolled goes back to its issuer."""
        token = self.operator_token
        worn = self.card["card-alan-worn"]
        resolved = self.api.post(f"/v1/operator/difficult/{self.difficult['unreadable']}/resolve",
                                 token, {"number": worn["number"]})
        say(f"resolved {resolved['deposit_id'][:8]}… by its number: card ending "
            f"{resolved['last4']}, now {resolved['status']}, restock number "
            f"{resolved.get('restock_number')}")
        self.restock_number = resolved.get("restock_number")
        expect(resolved["last4"] == worn["number"][-4:], "the resolution names another card")
        returned = self.api.post(f"/v1/operator/difficult/{self.difficult['no_holder']}/resolve",
                                 token, {"return_to_issuer": True})
        say(f"sent {returned['deposit_id'][:8]}… (ending {returned.get('last4', '')}) back to "
            f"its issuer: now {returned['status']}")
        collection = self.api.get(f"/v1/operator/kiosks/{KIOSKS[0]['id']}/collection", token)
        for item in collection.get("items", []):
            say(f"to take out of {KIOSKS[0]['id']}: {item['deposit_id'][:8]}… in "
                f"{item['location']}: {item['action']}"
                + f" (issuer {item.get('issuer_id') or 'unknown'})")

    def operator_empties_bin(self):
        """Olga empties the bin of her box. She types the operator key and her code, the bin
        unlocks, she empties it and shuts the door; the cloud records the cards collected by
        her."""
        box = self.boxes[KIOSKS[0]["id"]]
        box.screens()
        say("olga types * and her box code")
        box.act("type", f"* {self.operator_code}")
        box.show_until("Bin unlocked")
        box.act("bin-door", "open")
        taken = box.act("empty-bin").split()
        say(f"olga opens the bin door and takes out {len(taken)} card(s)")
        box.show_until("Bin door open")
        box.act("bin-door", "shut")
        say("olga shuts the bin door")
        box.show_until("Bin emptied")
        in_bin = [c["name"] for c in self.cards
                  if c["kiosk"] == box.kiosk_id and self.expected_place(c) == "bin"]
        expect(sorted(taken) == sorted(in_bin), f"the bin held {taken}, not {in_bin}")
        returned = self.difficult["no_holder"]
        self.wait_for("the cloud to record the bin emptied",
                      lambda: self.cloud_status(returned) == "collected")

    def restock_at_box(self):
        """Olga puts the card she resolved by hand back in a slot of its box. Still in her
        session, she types #, the card's restock number and the number printed on the card; the
        cloud checks that the card in her hand is that deposit's, and she puts it in the intake;
        the box stores it in a free slot, the cloud makes its pickup code and its holder is told.
        She ends her session with *."""
        box = self.boxes[KIOSKS[0]["id"]]
        worn = self.card["card-alan-worn"]
        deposit = self.difficult["unreadable"]
        expect(self.restock_number, "the resolution gave no restock number")
        box.screens()
        printed = " ".join(worn["number"][i:i + 4] for i in range(0, len(worn["number"]), 4))
        say(f"olga types #{self.restock_number} and the number printed on the card (ending "
            f"{worn['number'][-4:]})")
        box.act("type", f"#{self.restock_number} {printed}")
        box.show_until("in the intake")
        box.act("put-back", worn["name"])
        say(f"olga puts {worn['name']} (written #{self.restock_number}) in the intake")

        def notified():
            return any(n["notice"]["depositId"] == deposit for n in self.notices())

        self.wait_for("the card restocked and its holder notified",
                      lambda: self.cloud_status(deposit) == "stored" and notified())
        place = physical_places(box.sim_root).get(worn["name"], "nowhere")
        expect(place.startswith("slot:"), f"{worn['name']} went to {place}, not a slot")
        notice = next(n for n in self.notices() if n["notice"]["depositId"] == deposit)
        expect(notice["holder_id"] == worn["holder"],
               f"the restocked card's notice went to {notice['holder_id']}")
        say(f"the box holds it in slot {int(place[len('slot:'):]) + 1}; "
            f"{worn['holder']}'s phone receives:")
        for line in notice["notice"]["message"].splitlines():
            say(f"  {line}")
        self.facts["notified"] = len({n["notice"]["depositId"] for n in self.notices()})
        box.act("type", "*")
        self.wait_for("the operator's session to end",
                      lambda: b"operator session" in box.kiosk_log.read_bytes()
                      and b" ends: " in box.kiosk_log.read_bytes())
        say("olga types * and leaves: her session at the box ends")

    def issuer_hears_back(self):
        """The issuers' systems hear about their cards. Each card found (block it), and each
        one its holder took back."""
        def expected(issuer):  # found: every card of its in a box; returned: taken back
            return sorted(["card.found"] * sum(c["issuer"] == issuer for c in self.cards)
                          + ["card.returned"] * sum(c["issuer"] == issuer for c in self.picked_up))

        def received(issuer):
            return sorted(e["event"]["type"] for e in read_jsonl(self.events_file)
                          if e["issuer_id"] == issuer)

        arrived = wait_for("the issuers' events", lambda: all(
            len(received(i)) >= len(expected(i)) for i, _ in ISSUERS), self.args.timeout,
                           self.procs)
        for e in read_jsonl(self.events_file):
            ev = e["event"]
            say(f"{e['issuer_id']} receives {ev['type']}: card {ev['card_id']} ending "
                f"{ev['last4']} at {ev['kiosk_id']}")
        for issuer, _ in ISSUERS:
            expect(arrived and received(issuer) == expected(issuer),
                   f"{issuer} received {received(issuer)}, not {expected(issuer)}")

    def boxes_at_the_end(self):
        """What each box shows and physically holds at the end."""
        for kiosk_id, box in self.boxes.items():
            places = physical_places(box.sim_root)
            # Slots by the number on their door (from 1), as people see them.
            doors = sorted(int(p[len("slot:"):]) + 1 for p in places.values()
                           if p.startswith("slot:"))
            in_bin = sum(1 for p in places.values() if p == "bin")
            screen = box.sim_root / "state" / "display"
            shown = screen.read_text().strip() if screen.exists() else ""
            say(f"{kiosk_id} shows \"{shown}\"; holds a card in slot(s) "
                f"{', '.join(map(str, doors)) or 'none'}, {in_bin} in the bin")

    # ---- accounting: every card's place, as the box, the journal and the cloud see it ----

    def expected_place(self, card):
        return "slot" if card["holder"] and card["readable"] else "bin"

    def check_placement(self):
        """After the drops: every card where it should be, known to its kiosk's journal and to
        the cloud; each notice to its own holder. Records each card's deposit (the journal of a
        kiosk lists deposits in the order its cards went in)."""
        journals = self.journals()
        deposits = {d["deposit"]: d for d in self.cloud_deposits()}
        delivered = {}
        for n in self.notices():
            delivered.setdefault(n["notice"]["depositId"], []).append(n)
        for kiosk_id, rows in journals.items():
            dropped = [c for c in self.cards if c["kiosk"] == kiosk_id]
            for card, row in zip(dropped, rows if len(rows) == len(dropped) else []):
                card["deposit"] = row["deposit"]
        self.write_dropped()

        wrong = []
        for card in self.cards:
            place = physical_places(self.boxes[card["kiosk"]].sim_root).get(card["name"], "nowhere")
            if not place.startswith(self.expected_place(card)):
                wrong.append(f"{card['name']} went to {place}, not the {self.expected_place(card)}")
            elif card["holder"] and card["readable"]:
                got = delivered.get(card.get("deposit"), [])
                right = [n for n in got if n["holder_id"] == card["holder"]
                         and n["notice"]["kiosk"]["kioskId"] == card["kiosk"]
                         and n["notice"]["cardLast4"] == card["number"][-4:]]
                if len(got) != 1 or len(right) != 1:
                    wrong.append(f"{card['name']}: {len(got)} notices, {len(right)} to "
                                 f"{card['holder']} naming {card['kiosk']}")
        self.facts["notified"] = len({n["notice"]["depositId"] for n in self.notices()})
        self.facts["difficult"] = sum(
            1 for b in self.boxes.values() for p in physical_places(b.sim_root).values()
            if p == "bin")
        expect(not wrong, "; ".join(wrong))

    def write_dropped(self):
        """The finder's list: each dropped card's deposit id and number."""
        (self.work / "dropped.tsv").write_text("".join(
            f"{c.get('deposit', 'unknown')}\t{c['number'] or '-'}\n" for c in self.cards))

    def count_lost(self):
        """Cards whose physical place is not the one their kiosk's journal and the cloud record:
        in a slot or the bin, both must name that place; out of the box, the journal must have
        it collected and the cloud must have it collected, to return, or to restock."""
        journals = {r["deposit"]: r for rows in self.journals().values() for r in rows}
        deposits = {d["deposit"]: d for d in self.cloud_deposits()}
        lost = 0
        for card in self.cards:
            place = physical_places(self.boxes[card["kiosk"]].sim_root).get(card["name"], "nowhere")
            journal = journals.get(card.get("deposit"), {})
            cloud = deposits.get(card.get("deposit"), {})
            if place.startswith("slot:") or place == "bin":
                known = (journal.get("location") == place and cloud.get("location") == place
                         and cloud.get("kiosk") == card["kiosk"])
            elif place == "out":
                known = (journal.get("state") == "collected" and cloud.get("status")
                         in ("collected", "to_return", "awaiting_restock"))
            else:
                known = False
            if not known:
                lost += 1
                log(f"LOST {card['name']}: physically {place} in {card['kiosk']}, journal "
                    f"{journal.get('state')}/{journal.get('location')}, cloud "
                    f"{cloud.get('status')}/{cloud.get('location')}")
        return lost


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="card numbers and images")
    parser.add_argument("--timeout", type=float, default=180,
                        help="seconds to wait for the cards to settle, and for each person's "
                             "action to show")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="run in DIR (empty or new) and leave every file of the run there, "
                             "with DIR/dropped.tsv the only one holding card numbers")
    parser.add_argument("--issuer-list", metavar="FILE", type=Path,
                        help="also write every enrolled number (holder TAB number) to FILE, "
                             "outside the run's folder (for tests that search for leaks)")
    parser.add_argument("--serve", action="store_true",
                        help="after the steps, keep the system running until SIGINT/SIGTERM; "
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
        ok = demo(Demo(run, work, args, finder_private))
    finally:
        run.stop()
        shutil.rmtree(finder_private, ignore_errors=True)
    if args.keep:
        log(f"every file of the run is in {work}")
    return 0 if ok else 1


def demo(d):
    """Runs the steps in order; a step that sees something wrong ends the run's steps (the
    summary line is printed all the same, and stays the run's last but for --serve)."""
    started = time.monotonic()
    d.set_up()
    ok = True
    for who, step in STEPS:
        method = getattr(d, step)
        title = " ".join(method.__doc__.split(".")[0].split())
        print(f"\n---- {who}: {title} ----", flush=True)
        try:
            method()
        except (Wrong, OSError, KeyError, ValueError, subprocess.CalledProcessError) as e:
            ok = False
            log(f"WRONG in {step}: {e}")
            break
    print(flush=True)
    lost = d.count_lost()
    f = d.facts
    log(f"ran in {time.monotonic() - started:.0f} s")
    print(f"demo: dropped={len(d.cards)} notified={f.get('notified', 0)} "
          f"difficult={f.get('difficult', 0)} picked_up={f['picked_up']} lost={lost}", flush=True)
    ok = ok and lost == 0
    if d.args.serve and not serve(d.procs, d.cloud_port, d.http_port, d.pki, d.accounts):
        ok = False
    return ok


def serve(procs, cloud_port, http_port, pki, accounts):
    """Keeps the system running until SIGINT or SIGTERM; False when a process died before."""
    stop = []
    for signo in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signo, lambda s, _f: stop.append(s))
    first = PEOPLE[0][0]
    print(f"serving: kiosk=127.0.0.1:{cloud_port} http=127.0.0.1:{http_port}", flush=True)
    print(f"  log in (tokens last 15 minutes), e.g. as {first}:", flush=True)
    print(f"    curl --cacert {pki / 'ca.crt'} -H 'Content-Type: application/json' \\\n"
          f"      -d '{{\"login\": \"{first}\", \"password\": \"{accounts[first]}\"}}' "
          f"https://127.0.0.1:{http_port}/v1/auth/login", flush=True)
    print(f"    curl --cacert {pki / 'ca.crt'} -H 'Authorization: Bearer TOKEN' "
          f"https://127.0.0.1:{http_port}/v1/holder/deposits", flush=True)
    for login, _, sees in PEOPLE:
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


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        sys.exit(1)
