// Stanza helpers shared by every XMPP speaker: stream headers, stream errors (RFC 6120 §4.9),
// stanza errors (RFC 6120 §8.3) and ids. Pure functions on values; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "xml/element.h"

namespace tandem::xmpp {

inline constexpr const char* kNsClient = "jabber:client";
inline constexpr const char* kNsServer = "jabber:server";
inline constexpr const char* kNsComponent = "jabber:component:accept";
inline constexpr const char* kNsStreams = "http://etherx.jabber.org/streams";
inline constexpr const char* kNsStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr const char* kNsStanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas";
inline constexpr const char* kNsTls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr const char* kNsSasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr const char* kNsBind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr const char* kNsSession = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr const char* kNsRoster = "jabber:iq:roster";
inline constexpr const char* kNsSm = "urn:xmpp:sm:3";
inline constexpr const char* kNsCarbons = "urn:xmpp:carbons:2";
inline constexpr const char* kNsForward = "urn:xmpp:forward:0";
inline constexpr const char* kNsBlocking = "urn:xmpp:blocking";
inline constexpr const char* kNsPing = "urn:xmpp:ping";
inline constexpr const char* kNsDiscoInfo = "http://jabber.org/protocol/disco#info";
inline constexpr const char* kNsDiscoItems = "http://jabber.org/protocol/disco#items";
inline constexpr const char* kNsDelay = "urn:xmpp:delay";

// "<?xml version='1.0'?><stream:stream xmlns=... from=... id=... version='1.0'>" (to omitted when
// empty, id omitted when empty).
std::string streamHeader(std::string_view content_ns, std::string_view from, std::string_view to,
                         std::string_view id, std::string_view lang = "en");

// "<stream:error><COND xmlns=.../>[<text>][</stream:error>" followed by "</stream:stream>". For
// see-other-host, `other_host` is the element's text (address or "host:port").
std::string streamError(std::string_view condition, std::string_view text = "",
                        std::string_view other_host = "");

// The error reply to `stanza` (RFC 6120 §8.3): to/from swapped, type="error", the original
// children kept for messages and presence (not for iq results), <error type=...><COND/></error>.
// An original 'to' that is not a valid JID is answered from its bare part, or without 'from'.
xml::Element errorReply(const xml::Element& stanza, std::string_view type,
                        std::string_view condition, std::string_view text = "");

// An iq result for `iq` (to/from swapped, same id), optionally with one payload child.
xml::Element iqResult(const xml::Element& iq);

// A random id, 16 URL-safe characters.
std::string newId();

}  // namespace tandem::xmpp
