// Element tree: building, lookup and serialisation.
#include "xml/element.h"

namespace tandem::xml {

namespace {
const std::string kEmpty;

bool matches(const Element& e, std::string_view name, std::string_view xmlns) {
  return !e.isText() && e.name() == name && (xmlns.empty() || e.xmlns() == xmlns);
}
}  // namespace

Element::Element(std::string name, std::string xmlns) : name_(std::move(name)) {
  if (!xmlns.empty()) attrs_["xmlns"] = std::move(xmlns);
}

Element Element::makeText(std::string text) {
  Element e;
  e.text_ = std::move(text);
  return e;
}

const std::string& Element::attr(const std::string& key) const {
  auto it = attrs_.find(key);
  return it == attrs_.end() ? kEmpty : it->second;
}

Element& Element::setAttr(const std::string& key, std::string value) {
  attrs_[key] = std::move(value);
  return *this;
}

Element& Element::addChild(Element child) {
  children_.push_back(std::move(child));
  return children_.back();
}

Element& Element::addText(std::string text) {
  // Merge adjacent text nodes so text() stays cheap.
  if (!children_.empty() && children_.back().isText()) {
    children_.back().text_ += text;
    return children_.back();
  }
  return addChild(makeText(std::move(text)));
}

const Element* Element::child(std::string_view name, std::string_view xmlns) const {
  for (const auto& c : children_) {
    if (matches(c, name, xmlns)) return &c;
  }
  return nullptr;
}

Element* Element::child(std::string_view name, std::string_view xmlns) {
  for (auto& c : children_) {
    if (matches(c, name, xmlns)) return &c;
  }
  return nullptr;
}

std::vector<const Element*> Element::childrenNamed(std::string_view name,
                                                   std::string_view xmlns) const {
  std::vector<const Element*> out;
  for (const auto& c : children_) {
    if (matches(c, name, xmlns)) out.push_back(&c);
  }
  return out;
}

void Element::removeChildren(std::string_view name, std::string_view xmlns) {
  std::erase_if(children_, [&](const Element& c) { return matches(c, name, xmlns); });
}

std::string Element::text() const {
  if (isText()) return text_;
  std::string out;
  for (const auto& c : children_) {
    if (c.isText()) out += c.text_;
  }
  return out;
}

std::string Element::childText(std::string_view name, std::string_view xmlns) const {
  const Element* c = child(name, xmlns);
  return c ? c->text() : std::string();
}

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

void Element::appendTo(std::string& out) const {
  if (isText()) {
    out += escape(text_);
    return;
  }
  out += '<';
  out += name_;
  for (const auto& [k, v] : attrs_) {
    out += ' ';
    out += k;
    out += "=\"";
    out += escape(v);
    out += '"';
  }
  if (children_.empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const auto& c : children_) c.appendTo(out);
  out += "</";
  out += name_;
  out += '>';
}

std::string Element::toString() const {
  std::string out;
  appendTo(out);
  return out;
}

}  // namespace tandem::xml
