// Tests of the streaming XMPP parser: events, byte-by-byte feeding, and hostile input.
#include "xml/stream_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tandem::xml {
namespace {

constexpr const char* kHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>";

struct Recorder {
  std::vector<Element> headers;
  std::vector<Element> stanzas;
  int closes = 0;
  StreamParser::Callbacks callbacks() {
    return {[this](const Element& h) { headers.push_back(h); },
            [this](Element e) { stanzas.push_back(std::move(e)); }, [this] { closes++; }};
  }
};

TEST(StreamParser, ReportsHeaderStanzasAndClose) {
  Recorder r;
  StreamParser p(r.callbacks());
  ASSERT_TRUE(p.feed(kHeader).isOk());
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name(), "stream:stream");
  EXPECT_EQ(r.headers[0].attr("to"), "example.test");
  EXPECT_EQ(r.headers[0].attr("xmlns:stream"), "http://etherx.jabber.org/streams");
  ASSERT_TRUE(p.feed("<message to='b@example.test' type='chat'><body>hi &amp; bye</body>"
                     "</message> <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>")
                  .isOk());
  ASSERT_EQ(r.stanzas.size(), 2u);
  EXPECT_EQ(r.stanzas[0].name(), "message");
  EXPECT_EQ(r.stanzas[0].childText("body"), "hi & bye");
  EXPECT_NE(r.stanzas[1].child("ping", "urn:xmpp:ping"), nullptr);
  ASSERT_TRUE(p.feed("</stream:stream>").isOk());
  EXPECT_EQ(r.closes, 1);
}

TEST(StreamParser, AcceptsInputOneByteAtATime) {
  Recorder r;
  StreamParser p(r.callbacks());
  std::string all = std::string(kHeader) +
                    "<presence><status>h\xc3\xa9llo</status></presence><r xmlns='urn:xmpp:sm:3'/>";
  for (char c : all) ASSERT_TRUE(p.feed(std::string_view(&c, 1)).isOk());
  ASSERT_EQ(r.stanzas.size(), 2u);
  EXPECT_EQ(r.stanzas[0].childText("status"), "h\xc3\xa9llo");
  EXPECT_EQ(r.stanzas[1].xmlns(), "urn:xmpp:sm:3");
}

TEST(StreamParser, KeepsPrefixedNamesAndNamespaceAttributes) {
  Recorder r;
  StreamParser p(r.callbacks());
  ASSERT_TRUE(p.feed(std::string(kHeader) + "<stream:features><x:y xmlns:x='urn:x'/>"
                                            "</stream:features>")
                  .isOk());
  ASSERT_EQ(r.stanzas.size(), 1u);
  EXPECT_EQ(r.stanzas[0].name(), "stream:features");
  EXPECT_NE(r.stanzas[0].child("x:y"), nullptr);
}

TEST(StreamParser, RoundTripsThroughElementSerialisation) {
  Recorder r;
  StreamParser p(r.callbacks());
  ASSERT_TRUE(p.feed(kHeader).isOk());
  Element m("message", "jabber:client");
  m.setAttr("to", "a\"<b@example.test");
  m.addChild(Element("body")).addText("<&>'\"");
  ASSERT_TRUE(p.feed(m.toString()).isOk());
  ASSERT_EQ(r.stanzas.size(), 1u);
  EXPECT_EQ(r.stanzas[0].toString(), m.toString());
}

void expectCondition(const std::string& input, const std::string& condition) {
  Recorder r;
  StreamParser p(r.callbacks());
  Status st = p.feed(input);
  EXPECT_FALSE(st.isOk()) << input;
  EXPECT_EQ(p.errorCondition(), condition) << input << " -> " << st.message();
  EXPECT_FALSE(st.message().empty());
  // The parser stays failed.
  EXPECT_FALSE(p.feed("<message/>").isOk());
  EXPECT_EQ(p.errorCondition(), condition);
}

TEST(StreamParser, RefusesDoctypeAndBillionLaughs) {
  expectCondition(
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
      "<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>"
      "<stream:stream>&lol2;",
      "restricted-xml");
}

TEST(StreamParser, RefusesCommentsAndProcessingInstructions) {
  expectCondition(std::string(kHeader) + "<!-- hi -->", "restricted-xml");
  expectCondition(std::string(kHeader) + "<message><?php x ?></message>", "restricted-xml");
}

TEST(StreamParser, RefusesUndefinedEntities) {
  expectCondition(std::string(kHeader) + "<message>&xxe;</message>", "restricted-xml");
}

TEST(StreamParser, RefusesMalformedXmlAndInvalidUtf8) {
  expectCondition(std::string(kHeader) + "<message></presence>", "not-well-formed");
  expectCondition(std::string(kHeader) + "<message><body>\xff\xfe</body></message>",
                  "not-well-formed");
  expectCondition(std::string(kHeader) + "<message a='1' a='2'/>", "not-well-formed");
}

TEST(StreamParser, RefusesOtherEncodings) {
  expectCondition("<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>",
                  "unsupported-encoding");
}

TEST(StreamParser, RefusesOversizedStanza) {
  Recorder r;
  StreamParser p(r.callbacks(), StreamParserLimits{.max_stanza_bytes = 1000, .max_depth = 32});
  ASSERT_TRUE(p.feed(kHeader).isOk());
  ASSERT_TRUE(p.feed("<message><body>" + std::string(500, 'a') + "</body></message>").isOk());
  EXPECT_EQ(r.stanzas.size(), 1u);
  Status st = p.feed("<message><body>" + std::string(2000, 'a') + "</body></message>");
  EXPECT_FALSE(st.isOk());
  EXPECT_EQ(p.errorCondition(), "policy-violation");
  EXPECT_EQ(r.stanzas.size(), 1u);
}

TEST(StreamParser, RefusesHugeUnterminatedStartTagWithoutBufferingIt) {
  Recorder r;
  StreamParser p(r.callbacks(), StreamParserLimits{.max_stanza_bytes = 1000, .max_depth = 32});
  ASSERT_TRUE(p.feed(kHeader).isOk());
  Status st = Status::ok();
  std::string chunk = "<message a='" + std::string(4096, 'x');
  int fed = 0;
  for (; fed < 1000 && st.isOk(); ++fed) {
    st = p.feed(chunk);
    chunk = std::string(4096, 'x');
  }
  EXPECT_FALSE(st.isOk());
  EXPECT_LT(fed, 10);
  EXPECT_EQ(p.errorCondition(), "policy-violation");
}

TEST(StreamParser, RefusesDeepNesting) {
  Recorder r;
  StreamParser p(r.callbacks(), StreamParserLimits{.max_stanza_bytes = 1 << 20, .max_depth = 8});
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += "<a>";
  Status st = p.feed(std::string(kHeader) + deep);
  EXPECT_FALSE(st.isOk());
  EXPECT_EQ(p.errorCondition(), "policy-violation");
}

TEST(StreamParser, ResetStartsANewStreamAndDropsTheRestOfTheChunk) {
  Recorder r;
  StreamParser* parser = nullptr;
  StreamParser::Callbacks cb = r.callbacks();
  cb.on_stanza = [&](Element e) {
    r.stanzas.push_back(e);
    if (e.name() == "starttls") parser->reset();
  };
  StreamParser p(cb);
  parser = &p;
  ASSERT_TRUE(p.feed(std::string(kHeader) + "<starttls/>\x16\x03\x01garbage-tls-bytes").isOk());
  EXPECT_EQ(r.stanzas.size(), 1u);
  ASSERT_TRUE(p.feed(kHeader).isOk());
  EXPECT_EQ(r.headers.size(), 2u);
  ASSERT_TRUE(p.feed("<iq/>").isOk());
  EXPECT_EQ(r.stanzas.size(), 2u);
}

TEST(StreamParser, ResetClearsAFailure) {
  Recorder r;
  StreamParser p(r.callbacks());
  EXPECT_FALSE(p.feed("<<<").isOk());
  p.reset();
  EXPECT_TRUE(p.feed(kHeader).isOk());
  EXPECT_EQ(p.errorCondition(), "");
}

}  // namespace
}  // namespace tandem::xml
