#!/usr/bin/python3
"""Interop scenarios for Starling driven by slixmpp, an independent XMPP client library (Debian's
python3-slixmpp). The Go test TestInteropSlixmpp starts a node, creates alice and bob, runs this script,
and checks the server's own metrics afterwards.

Each scenario prints "ok <name>" or "FAIL <name>: <why>"; the exit status is the number of failures.
Every wait is bounded: nothing here can hang the test run.
"""
import argparse
import asyncio
import logging
import ssl
import sys

import slixmpp

WAIT = 10  # seconds for any single expected event


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, resource):
        super().__init__(jid + "/" + resource, password, sasl_mech="SCRAM-SHA-256")
        # The node's certificate is self-signed: trust it for this test only.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        # slixmpp knows only the tls-unique channel binding, which RFC 9266 forbids on TLS 1.3, yet it
        # reports it as supported there and so sends the SCRAM 'y' flag; Starling advertises -PLUS
        # (tls-exporter) and, as RFC 5802 §6 requires, treats that 'y' as a downgrade. A client that
        # follows RFC 9266 has no channel binding to claim on TLS 1.3: make slixmpp say so.
        fm = self["feature_mechanisms"]
        default_creds = fm._default_credentials

        def creds(required, optional):
            out = default_creds(required, optional)
            sock = self.socket
            if "channel_binding" in out and getattr(sock, "version", lambda: "")() == "TLSv1.3":
                out["channel_binding"] = None
            return out
        fm.sasl_callback = creds
        for p in ("xep_0030", "xep_0199", "xep_0203", "xep_0092", "xep_0280"):
            self.register_plugin(p)
        self.messages = asyncio.Queue()
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))
        self.roster_pushes = asyncio.Queue()
        self.add_event_handler("roster_update", lambda iq: self.roster_pushes.put_nowait(iq))
        self.carbons = asyncio.Queue()
        self.add_event_handler("carbon_received", lambda m: self.carbons.put_nowait(m))
        self.add_event_handler("session_start", self._start)
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("failed_auth", lambda *_: self.started.done() or self.started.set_exception(RuntimeError("authentication failed")))

    async def _start(self, _):
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    async def login(self, host, port):
        self.connect((host, port), force_starttls=True)
        await asyncio.wait_for(self.started, WAIT)

    async def logout(self):
        self.disconnect()
        await asyncio.wait_for(self.disconnected, WAIT)


async def next_message(c, pred=lambda m: True):
    while True:
        m = await asyncio.wait_for(c.messages.get(), WAIT)
        if m["type"] in ("chat", "normal") and pred(m):
            return m


async def eventually(what, fn):
    for _ in range(WAIT * 20):
        if fn():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never true: " + what)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.v else logging.CRITICAL)
    d = args.domain
    alice_jid, bob_jid = "alice@" + d, "bob@" + d
    failures = 0

    async def scenario(name, coro):
        nonlocal failures
        try:
            await coro
            print("ok", name, flush=True)
        except Exception as e:  # report and go on: every scenario says what it saw
            failures += 1
            print("FAIL %s: %r" % (name, e), flush=True)

    alice = Client(alice_jid, "alice-pw", "laptop")
    bob = Client(bob_jid, "bob-pw", "phone")

    async def login():
        await alice.login(args.host, args.port)
        await bob.login(args.host, args.port)
        assert str(alice.boundjid) == alice_jid + "/laptop", alice.boundjid
    await scenario("login-scram-sha-256-starttls", login())

    async def roster():
        while not alice.roster_pushes.empty():  # the answer to the login's roster get
            alice.roster_pushes.get_nowait()
        alice.update_roster(bob_jid, name="Bob", groups=["Friends"])
        push = await asyncio.wait_for(alice.roster_pushes.get(), WAIT)
        items = push["roster"]["items"]
        assert push["type"] == "set" and bob_jid in [str(j) for j in items], push
        await alice.get_roster()
        item = alice.client_roster[bob_jid]
        assert item["name"] == "Bob" and item["groups"] == ["Friends"], (item["name"], item["groups"])
    await scenario("roster-add-and-push", roster())

    async def subscription():
        bob.roster.auto_authorize = True
        bob.roster.auto_subscribe = True
        alice.roster.auto_authorize = True
        alice.send_presence_subscription(pto=bob_jid)
        await eventually("alice subscribed to bob both ways",
                         lambda: alice.client_roster[bob_jid]["subscription"] == "both")
        await eventually("bob subscribed to alice both ways",
                         lambda: bob.client_roster[alice_jid]["subscription"] == "both")
        await eventually("alice sees bob available",
                         lambda: len(alice.client_roster.presence(bob_jid)) > 0)
    await scenario("subscription-both-ways", subscription())

    async def messages():
        alice.send_message(mto=bob_jid, mbody="hello bob", mtype="chat")
        m = await next_message(bob)
        assert m["body"] == "hello bob" and str(m["from"]) == alice_jid + "/laptop", (m["body"], m["from"])
        bob.send_message(mto=m["from"], mbody="hello alice", mtype="chat")
        m = await next_message(alice)
        assert m["body"] == "hello alice" and str(m["from"]).startswith(bob_jid), (m["body"], m["from"])
    await scenario("messages-both-ways", messages())

    async def offline():
        await bob.logout()
        alice.send_message(mto=bob_jid, mbody="while you were out", mtype="chat")
        await asyncio.sleep(0.2)  # let the server store it before bob returns
        bob2 = Client(bob_jid, "bob-pw", "desk")
        await bob2.login(args.host, args.port)
        m = await next_message(bob2, lambda m: m["body"] == "while you were out")
        assert m["delay"]["stamp"] is not None, m
        await bob2.logout()
    await scenario("offline-delivery", offline())

    async def disco():
        info = await alice["xep_0030"].get_info(jid=d, timeout=WAIT)
        ids = info["disco_info"]["identities"]
        assert any(i[0] == "server" and i[1] == "im" for i in ids), ids
        feats = info["disco_info"]["features"]
        assert "urn:xmpp:ping" in feats, feats
        await alice["xep_0030"].get_items(jid=d, timeout=WAIT)
    await scenario("disco-info-and-items", disco())

    async def ping():
        rtt = await alice["xep_0199"].ping(jid=d, timeout=WAIT)
        assert rtt is not None and rtt < WAIT, rtt
    await scenario("ping", ping())

    async def version():
        v = await alice["xep_0092"].get_version(d, timeout=WAIT)
        assert v["software_version"]["name"] == "Starling", v
    await scenario("software-version", version())

    async def carbons():
        alice2 = Client(alice_jid, "alice-pw", "phone")
        await alice2.login(args.host, args.port)
        await alice2["xep_0280"].enable(timeout=WAIT)
        bob3 = Client(bob_jid, "bob-pw", "tablet")
        await bob3.login(args.host, args.port)
        bob3.send_message(mto=alice_jid + "/laptop", mbody="for the laptop", mtype="chat")
        m = await next_message(alice, lambda m: m["body"] == "for the laptop")
        c = await asyncio.wait_for(alice2.carbons.get(), WAIT)
        fwd = c["carbon_received"]
        assert fwd["body"] == "for the laptop" and str(fwd["from"]).startswith(bob_jid), fwd
        await bob3.logout()
        await alice2.logout()
    await scenario("message-carbons", carbons())

    await alice.logout()
    print("%d passed, %d failed" % (9 - failures, failures))
    return failures


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
