// Stream headers, stream and stanza errors.
#include "xmpp/stanza.h"

#include <openssl/rand.h>

#include "xmpp/jid.h"

namespace tandem::xmpp {

std::string streamHeader(std::string_view content_ns, std::string_view from, std::string_view to,
                         std::string_view id, std::string_view lang) {
  std::string s = "<?xml version='1.0'?><stream:stream xmlns='";
  s += content_ns;
  s += "' xmlns:stream='http://etherx.jabber.org/streams'";
  if (!from.empty()) s += " from='" + xml::escape(from) + "'";
  if (!to.empty()) s += " to='" + xml::escape(to) + "'";
  if (!id.empty()) s += " id='" + xml::escape(id) + "'";
  s += " version='1.0' xml:lang='";
  s += lang;
  s += "'>";
  return s;
}

std::string streamError(std::string_view condition, std::string_view text,
                        std::string_view other_host) {
  xml::Element err("stream:error");
  xml::Element& cond = err.addChild(xml::Element(std::string(condition), kNsStreamErrors));
  if (!other_host.empty()) cond.addText(std::string(other_host));
  if (!text.empty()) {
    err.addChild(xml::Element("text", kNsStreamErrors)).addText(std::string(text));
  }
  return err.toString() + "</stream:stream>";
}

xml::Element errorReply(const xml::Element& stanza, std::string_view type,
                        std::string_view condition, std::string_view text) {
  xml::Element reply(stanza.name());
  for (const auto& [k, v] : stanza.attrs()) reply.setAttr(k, v);
  reply.removeAttr("to");
  reply.removeAttr("from");
  if (!stanza.attr("from").empty()) reply.setAttr("to", stanza.attr("from"));
  // An invalid 'to' (a TAB or an empty resource, a 2 KB nickname) is not echoed as 'from':
  // clients drop a stanza whose 'from' they cannot parse (slixmpp closes its stream), so the
  // error would never be seen. The bare part answers instead; failing that, the server does.
  const std::string& orig_to = stanza.attr("to");
  if (Jid::parse(orig_to)) {
    reply.setAttr("from", orig_to);
  } else if (auto bare = Jid::parse(std::string_view(orig_to).substr(0, orig_to.find('/')))) {
    reply.setAttr("from", bare->bare());
  }
  reply.setAttr("type", "error");
  if (stanza.name() != "iq") {
    for (const auto& c : stanza.children()) {
      if (!c.isText() && c.name() != "error") reply.addChild(c);
    }
  }
  xml::Element& err = reply.addChild(xml::Element("error"));
  err.setAttr("type", std::string(type));
  err.addChild(xml::Element(std::string(condition), kNsStanzaErrors));
  if (!text.empty()) err.addChild(xml::Element("text", kNsStanzaErrors)).addText(std::string(text));
  return reply;
}

xml::Element iqResult(const xml::Element& iq) {
  xml::Element r("iq");
  r.setAttr("type", "result");
  if (!iq.attr("id").empty()) r.setAttr("id", iq.attr("id"));
  if (!iq.attr("from").empty()) r.setAttr("to", iq.attr("from"));
  if (!iq.attr("to").empty()) r.setAttr("from", iq.attr("to"));
  return r;
}

std::string newId() {
  static const char* chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  std::string s;
  for (unsigned char c : raw) s += chars[c & 63];
  return s;
}

}  // namespace tandem::xmpp
