// Element: an XML element tree, the in-memory form of one XMPP stanza.
//
// A value type (copyable, movable). Names are kept as the qualified name written on the wire
// ("message", "stream:error"); namespaces are ordinary attributes ("xmlns"). Text nodes are
// stored as children with an empty name. Not thread-safe; give each thread its own copy.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::xml {

class Element {
 public:
  Element() = default;
  explicit Element(std::string name, std::string xmlns = "");

  const std::string& name() const { return name_; }
  bool isText() const { return name_.empty(); }

  // Attributes. attr() returns "" when absent.
  const std::string& attr(const std::string& key) const;
  bool hasAttr(const std::string& key) const { return attrs_.count(key) != 0; }
  Element& setAttr(const std::string& key, std::string value);
  void removeAttr(const std::string& key) { attrs_.erase(key); }
  const std::map<std::string, std::string>& attrs() const { return attrs_; }
  // The element's xmlns attribute (not inherited).
  const std::string& xmlns() const { return attr("xmlns"); }

  // Children (elements and text nodes, in document order).
  const std::vector<Element>& children() const { return children_; }
  std::vector<Element>& children() { return children_; }
  Element& addChild(Element child);  // returns the stored child
  Element& addText(std::string text);
  // First child element with this name (and xmlns when given); nullptr when none.
  const Element* child(std::string_view name, std::string_view xmlns = {}) const;
  Element* child(std::string_view name, std::string_view xmlns = {});
  // All direct child elements with this name (and xmlns when given).
  std::vector<const Element*> childrenNamed(std::string_view name, std::string_view xmlns = {}) const;
  void removeChildren(std::string_view name, std::string_view xmlns = {});

  // Concatenated text of the direct text children.
  std::string text() const;
  // Text of the first child `name`, or "" when absent.
  std::string childText(std::string_view name, std::string_view xmlns = {}) const;

  // Serialises with escaping. The result is well-formed XML.
  std::string toString() const;
  void appendTo(std::string& out) const;

  static Element makeText(std::string text);

 private:
  std::string name_;
  std::string text_;  // for text nodes only
  std::map<std::string, std::string> attrs_;
  std::vector<Element> children_;
};

// Escapes &, <, >, " and ' for text and attribute values.
std::string escape(std::string_view text);

}  // namespace tandem::xml
