"""A minimal asyncio XMPP client for load: STARTTLS on 5222, SCRAM-SHA-256 (hashlib PBKDF2), bind.

Deliberately tiny and the same for every server under test, so the client's own cost is small and
equal for Tandem, Prosody and ejabberd (slixmpp's pure-Python PBKDF2 and per-stanza object
building would dominate otherwise: shared/notes/xmpp-testing.md). Parsing is by pattern, not a
full XML parser: good enough for the stanzas these benchmarks exchange, never for a real client.
It connects straight to the given address (no DNS), and does not verify certificates (a load
tool: the peers use self-signed certificates).
"""

import asyncio
import base64
import hashlib
import hmac
import os
import re
import ssl

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def header(domain: str) -> bytes:
    return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>").encode()


def tls_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


class XmppError(RuntimeError):
    pass


class Session:
    """One client session on raw asyncio streams."""

    def __init__(self, address: str, domain: str, port: int = 5222):
        self.address, self.domain, self.port = address, domain, port
        self.r = self.w = None
        self.buf = b""
        self.jid = ""

    async def _until(self, pattern: bytes, timeout: float = 30) -> bytes:
        """Reads until `pattern` matches the buffer; returns and consumes the buffer up to it."""
        rx = re.compile(pattern, re.S)

        async def loop():
            while True:
                m = rx.search(self.buf)
                if m:
                    out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                    return out
                chunk = await self.r.read(65536)
                if not chunk:
                    raise XmppError(f"closed while waiting for {pattern!r}: {self.buf[-300:]!r}")
                self.buf += chunk
        return await asyncio.wait_for(loop(), timeout)

    def send(self, data) -> None:
        self.w.write(data.encode() if isinstance(data, str) else data)

    async def connect_tls(self, ctx: ssl.SSLContext) -> bytes:
        """TCP, stream header, STARTTLS, stream restart; returns the features after TLS."""
        self.r, self.w = await asyncio.open_connection(self.address, self.port)
        self.send(header(self.domain))
        await self._until(rb"</stream:features>")
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self._until(rb"<proceed[^>]*/>|<proceed[^>]*>\s*</proceed>")
        await self.w.start_tls(ctx, server_hostname=self.domain)
        self.buf = b""
        self.send(header(self.domain))
        return await self._until(rb"</stream:features>")

    async def register(self, user: str, password: str) -> None:
        """XEP-0077 in-band registration (peers only); 'conflict' counts as already registered."""
        self.send(f"<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{user}"
                  f"</username><password>{password}</password></query></iq>")
        out = await self._until(rb"<iq[^>]*id=['\"]reg['\"].*?(/>|</iq>)")
        if b"type='error'" in out or b'type="error"' in out:
            if b"conflict" not in out:
                raise XmppError(f"registration of {user} failed: {out[-400:]!r}")

    async def scram(self, user: str, password: str) -> None:
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={user},r={nonce}"
        self.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>"
                  f"{base64.b64encode(('n,,' + first_bare).encode()).decode()}</auth>")
        out = await self._until(rb"</challenge>|<failure.*?</failure>")
        m = re.search(rb"<challenge[^>]*>([^<]*)</challenge>", out)
        if not m:
            raise XmppError(f"SCRAM-SHA-256 refused for {user}: {out[-300:]!r}")
        server_first = base64.b64decode(m.group(1)).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(nonce):
            raise XmppError("server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_bare = f"c=biws,r={attrs['r']}"
        auth_message = f"{first_bare},{server_first},{final_bare}".encode()
        sig = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        final = f"{final_bare},p={base64.b64encode(proof).decode()}"
        self.send(f"<response xmlns='{SASL}'>{base64.b64encode(final.encode()).decode()}</response>")
        out = await self._until(rb"<success[^>]*/>|</success>|</failure>")
        if b"<success" not in out:
            raise XmppError(f"SCRAM-SHA-256 failed for {user}: {out[-300:]!r}")
        self.iterations = int(attrs["i"])

    async def sign_in(self, ctx: ssl.SSLContext, user: str, password: str, resource: str,
                      presence: bool = False) -> None:
        """STARTTLS + SCRAM-SHA-256 + bind (+ initial presence); the session is then idle."""
        features = await self.connect_tls(ctx)
        if b"SCRAM-SHA-256<" not in features:
            raise XmppError(f"no SCRAM-SHA-256 offered: {features[-400:]!r}")
        await self.scram(user, password)
        self.send(header(self.domain))
        features = await self._until(rb"</stream:features>")
        self.send(f"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                  f"<resource>{resource}</resource></bind></iq>")
        out = await self._until(rb"</iq>")
        m = re.search(rb"<jid>([^<]+)</jid>", out)
        if not m:
            raise XmppError(f"bind failed: {out[-300:]!r}")
        self.jid = m.group(1).decode()
        if b"urn:ietf:params:xml:ns:xmpp-session" in features and b"<optional" not in features:
            self.send("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
            await self._until(rb"<iq[^>]*id=['\"]sess['\"].*?(/>|</iq>)")
        if presence:
            self.send("<presence/>")

    async def close(self) -> None:
        if self.w is None:
            return
        try:
            self.send("</stream:stream>")
            await asyncio.wait_for(self.w.drain(), 5)
            self.w.close()
            await asyncio.wait_for(self.w.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError, ssl.SSLError):
            pass
        self.w = None

    def abort(self) -> None:
        if self.w is not None:
            self.w.transport.abort()
            self.w = None
