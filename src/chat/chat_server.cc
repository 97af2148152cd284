// ChatServer: wiring of the MUC service, stores, component links and CMS settings.
#include "chat/chat_server.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>

#include "chat/compliance.h"
#include "chat/db_runner.h"
#include "chat/delivery_paths.h"
#include "chat/group_commit.h"
#include "chat/muc_service.h"
#include "chat/room_store.h"
#include "chat/schema.h"
#include "common/files.h"
#include "common/hash_ring.h"
#include "store/pool.h"
#include "xmpp/component_client.h"
#include "xmpp/jid.h"

namespace tandem::chat {

namespace {

// What a chat server takes from one CMS snapshot.
struct PoolView {
  std::string pool, service, state = "Normal", store, frontend_pool, default_category;
  std::vector<std::string> store_addresses, active_servers;
  std::vector<std::pair<std::string, std::string>> frontend_servers;  // (fqdn, address)
  std::vector<topology::Room> demo_rooms;
  bool active = false;
};

Result<PoolView> viewOf(const cms::Snapshot& snap, const std::string& server) {
  const auto& topo = snap.topology();
  const topology::Pool* pool = nullptr;
  if (topo.findServer(server, &pool) == nullptr || pool == nullptr ||
      pool->role != topology::PoolRole::kChat) {
    return fail(notFound("`" + server + "` is not a chat server of the deployed topology"));
  }
  PoolView v;
  v.pool = pool->fqdn;
  v.service = pool->fqdn;
  v.state = snap.chatState(pool->fqdn);
  v.active_servers = snap.activeServers(pool->fqdn);
  v.frontend_pool = snap.chatFrontendPool(pool->fqdn);
  auto category = snap.setting("chat." + pool->fqdn + ".default_category");
  v.default_category = category.is_string() ? category.get<std::string>() : kDefaultCategory;
  if (v.frontend_pool.empty()) v.frontend_pool = pool->frontend_pool;
  bool failed_over = v.state == "FailedOver";
  v.store = failed_over ? pool->backup_store : pool->store;
  if (const auto* st = topo.findStore(v.store)) {
    v.store_addresses.push_back(st->address);
    std::string mirror = st->mirror.empty() && failed_over ? pool->backup_mirror : st->mirror;
    if (const auto* m = topo.findStore(mirror); m && m->address != st->address) {
      v.store_addresses.push_back(m->address);
    }
  }
  if (const auto* fe = topo.findPool(v.frontend_pool)) {
    for (const auto& s : fe->servers) v.frontend_servers.emplace_back(s.fqdn, s.address);
  }
  v.demo_rooms = topo.rooms;
  for (const auto& a : v.active_servers) v.active = v.active || a == server;
  return v;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

struct ChatServer::Impl {
  ChatServerOptions options;
  cms::Replica* replica = nullptr;
  std::string token;
  PoolView view;  // on the io thread

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;

  std::unique_ptr<store::ConnectionPool> mgc_pool, comp_pool;
  std::unique_ptr<GroupCommitWriter> writer;
  std::unique_ptr<DbRunner> db;
  std::unique_ptr<MucService> muc;
  std::map<std::string, std::shared_ptr<xmpp::ComponentClient>> links;  // by FE server FQDN
  DeliveryPaths paths;   // which link carries each destination's stanzas (delivery_paths.h)
  HeldStanzas held;      // while no front end is attached
  asio::steady_timer hold_timer{io};
  uint64_t undeliverable = 0;  // held too long or pushed out of a full hold
  uint64_t discarded_before = 0;  // discarded by links that were replaced (their counts)
  int watch_id = 0;

  // Maintenance thread: schemas + demo rooms once per store, then the compliance feed.
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;                        // GUARDED_BY(mu)
  bool maint_active = false;                    // GUARDED_BY(mu)
  std::vector<std::string> maint_addresses;     // GUARDED_BY(mu)
  std::vector<topology::Room> maint_rooms;      // GUARDED_BY(mu)
  uint64_t store_generation = 0;                // GUARDED_BY(mu)
  std::atomic<bool> schema_ready{false};
  std::atomic<uint64_t> compliance_fed{0};
  std::string last_store_error;                 // GUARDED_BY(mu)
  std::thread maint_thread;

  // Every stanza for one destination goes through one front end (delivery_paths.h); with no
  // front end attached it is held, in order, behind what is held already.
  void send(std::string stanza) {
    if (held.empty() && deliver(stanza)) return;
    undeliverable += held.push(std::move(stanza), std::chrono::steady_clock::now());
    flushHeld();
    if (!held.empty()) armHoldTimer();
  }

  // False (and `stanza` untouched) when no front end is attached.
  bool deliver(std::string& stanza) {
    std::string fe = paths.pathFor(destinationOf(stanza), std::chrono::steady_clock::now());
    auto it = links.find(fe);
    if (it == links.end() || !it->second->isAttached()) return false;
    return it->second->send(std::move(stanza));
  }

  void flushHeld() {
    while (!held.empty() && deliver(held.front())) held.pop();
  }

  void armHoldTimer() {
    hold_timer.expires_after(std::chrono::milliseconds(500));
    hold_timer.async_wait([this](const asio::error_code& ec) {
      if (ec) return;
      size_t n = held.expire(std::chrono::steady_clock::now());
      if (n > 0) {
        undeliverable += n;
        spdlog::warn("no front end of {} attached for 5 s: {} stanza(s) undeliverable",
                     view.frontend_pool, n);
      }
      flushHeld();
      if (!held.empty()) armHoldTimer();
    });
  }

  // After a link attached or detached: the ring of delivery paths follows the attached set.
  void onLinksChanged() {
    std::vector<std::string> attached;
    for (const auto& [fqdn, link] : links) {
      if (link->isAttached()) attached.push_back(fqdn);
    }
    paths.setAttached(std::move(attached));
    flushHeld();
  }

  uint64_t discarded() const {
    uint64_t n = discarded_before;
    for (const auto& [fqdn, link] : links) n += link->discarded();
    return n;
  }

  void apply(const cms::Snapshot& snap);
  void maintenance();
};

void ChatServer::Impl::apply(const cms::Snapshot& snap) {
  auto v = viewOf(snap, options.server);
  if (!v) {
    spdlog::error("CMS version {}: {}", snap.version().number, v.error().message());
    return;
  }
  bool store_changed = v->store_addresses != view.store_addresses;
  if (store_changed || v->active != view.active || v->state != view.state ||
      v->active_servers != view.active_servers || v->frontend_pool != view.frontend_pool) {
    spdlog::info("chat pool {}: state {}, store {}, active servers [{}], this server {}",
                 v->pool, v->state, v->store, fmt::join(v->active_servers, ", "),
                 v->active ? "active" : "inactive");
  }
  if (store_changed) {
    mgc_pool->setConninfo(store::connectionString(v->store_addresses, kMgcDatabase, token));
    comp_pool->setConninfo(store::connectionString(v->store_addresses, kComplianceDatabase, token));
    schema_ready = false;
  }
  view = *v;
  muc->setDefaultCategory(view.default_category);
  if (!view.active) {
    muc->setOwnership([](const std::string&) { return false; }, false);
    mgc_pool->resetAll();
    comp_pool->resetAll();
    // Detach a moment later, so the evicted occupants' unavailable presences (status 332)
    // still reach the front ends and their clients know to rejoin the new owner.
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(500));
    timer->async_wait([this, timer](const asio::error_code&) {
      if (view.active) return;  // reactivated meanwhile
      for (auto& [fqdn, link] : links) {
        discarded_before += link->discarded();
        link->stop();
      }
      links.clear();
      onLinksChanged();
    });
  } else {
    auto ring = std::make_shared<HashRing>(view.active_servers);
    std::string service = view.service, me = options.server;
    muc->setOwnership(
        [ring, service, me](const std::string& room) {
          return ring->ownerOf(room + "@" + service) == me;
        },
        true);
    std::map<std::string, std::string> wanted;  // fqdn -> address
    for (const auto& [fqdn, a] : view.frontend_servers) wanted[fqdn] = a;
    for (auto it = links.begin(); it != links.end();) {
      if (!wanted.count(it->first) || wanted[it->first] != it->second->options().host) {
        discarded_before += it->second->discarded();
        it->second->stop();
        it = links.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [fqdn, a] : view.frontend_servers) {
      if (links.count(fqdn)) continue;
      auto link = xmpp::ComponentClient::create(
          io.get_executor(),
          {.host = a, .port = options.component_port, .service = view.service,
           .identity = options.server, .secret = token},
          [this](xml::Element st) { muc->handle(std::move(st)); },
          [this, a](bool attached, const std::string& why) {
            if (attached) spdlog::info("attached to front end {} as a component", a);
            else spdlog::warn("detached from front end {}: {}", a, why);
            onLinksChanged();
          });
      link->start();
      links[fqdn] = link;
    }
    onLinksChanged();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    maint_active = view.active;
    maint_rooms = view.demo_rooms;
    if (store_changed) {
      maint_addresses = view.store_addresses;
      ++store_generation;
    }
  }
  cv.notify_all();
}

void ChatServer::Impl::maintenance() {
  uint64_t ready_generation = 0;
  bool was_ready = false;
  // The compliance feed runs when this server committed messages since the last feed, after the
  // store became ready, and at least every kFeedAtLeastEvery (it is also how the store's health
  // is checked while idle): an idle server no longer opens two transactions four times a second.
  constexpr auto kFeedAtLeastEvery = std::chrono::seconds(2);
  uint64_t fed_after_messages = 0;  // the writer's commit count when the last feed began
  bool feed_again = false;          // the last feed did not drain the queue
  auto last_feed = std::chrono::steady_clock::time_point{};
  std::unique_lock<std::mutex> lock(mu);
  while (!stopping) {
    cv.wait_for(lock, std::chrono::milliseconds(was_ready ? 250 : 1000));
    if (stopping) break;
    if (!maint_active) continue;
    auto addresses = maint_addresses;
    auto rooms = maint_rooms;
    uint64_t gen = store_generation;
    lock.unlock();
    Status st;
    bool became_ready = false;
    if (ready_generation != gen || !schema_ready) {
      st = ensureChatSchemas(addresses, token);
      if (st) {
        auto lease = mgc_pool->acquire(std::chrono::seconds(5));
        if (!lease) st = lease.error();
        for (const auto& r : rooms) {
          if (!st) break;
          auto cat = findCategory(lease->get(), r.category);
          if (!cat) { st = cat.error(); break; }
          if (!*cat) st = upsertCategory(lease->get(), Category{r.category, "", {"*"}, {"*"}});
          RoomRecord rec;
          rec.name = r.name;
          rec.category = r.category;
          if (st) {
            auto made = createRoom(lease->get(), rec);
            if (!made) st = made.error();
          }
        }
      }
      if (st) {
        ready_generation = gen;
        schema_ready = true;
        became_ready = true;
        spdlog::info("chat store ready: mgc and mgccomp migrated, {} demo room(s) present",
                     rooms.size());
      }
    }
    const uint64_t committed = writer ? writer->stats().messages : 0;
    const bool feed_due = !was_ready || became_ready || feed_again ||
                          committed != fed_after_messages ||
                          std::chrono::steady_clock::now() - last_feed >= kFeedAtLeastEvery;
    if (st && schema_ready && feed_due) {
      bool drained = false;
      auto m = mgc_pool->acquire(std::chrono::seconds(2));
      auto c = comp_pool->acquire(std::chrono::seconds(2));
      if (!m) st = m.error();
      else if (!c) st = c.error();
      else {
        for (int i = 0; i < 20; ++i) {
          auto n = feedCompliance(m->get(), c->get(), options.server);
          if (!n) { st = n.error(); break; }
          compliance_fed += *n;
          if (*n == 0) { drained = true; break; }
        }
      }
      last_feed = std::chrono::steady_clock::now();
      fed_after_messages = committed;
      feed_again = !drained;  // an error, or more than 20 batches waiting
    }
    was_ready = st.isOk() && schema_ready;
    lock.lock();
    last_store_error = st.isOk() ? "" : st.message();
    if (!st) spdlog::warn("chat store maintenance: {}", st.message());
  }
}

Result<std::unique_ptr<ChatServer>> ChatServer::create(const ChatServerOptions& options,
                                                       cms::Replica& replica) {
  auto token = readFile(options.state_dir + "/secret/token");
  if (!token) {
    return fail(notFound("the deployment secret " + options.state_dir +
                         "/secret/token is missing; run `tandemctl deploy up` first"));
  }
  auto snap = replica.current();
  auto v = viewOf(*snap, options.server);
  if (!v) return fail(v.error());
  std::unique_ptr<ChatServer> s(new ChatServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& i = *s->impl_;
  i.options = options;
  i.replica = &replica;
  i.token = trim(*token);
  i.mgc_pool = std::make_unique<store::ConnectionPool>(
      store::connectionString(v->store_addresses, kMgcDatabase, i.token), options.mgc_connections);
  i.comp_pool = std::make_unique<store::ConnectionPool>(
      store::connectionString(v->store_addresses, kComplianceDatabase, i.token), 2);
  i.view.store_addresses = v->store_addresses;
  i.writer = std::make_unique<GroupCommitWriter>(*i.mgc_pool,
                                                 GroupCommitOptions{.writer = options.server});
  i.db = std::make_unique<DbRunner>(i.io.get_executor(), *i.mgc_pool, 3);
  i.muc = std::make_unique<MucService>(
      i.io.get_executor(),
      MucService::Options{.service = v->service, .server = options.server,
                          .domain = snap->topology().domain, .limits = {}},
      *i.writer, *i.db, [&i](std::string st) { i.send(std::move(st)); },
      [](const std::string&) { return false; });
  {
    std::lock_guard<std::mutex> lock(i.mu);
    i.maint_addresses = v->store_addresses;
    i.store_generation = 1;
  }
  return s;
}

ChatServer::~ChatServer() { stop(); }

Status ChatServer::start() {
  Impl& i = *impl_;
  i.work.emplace(i.io.get_executor());
  i.io_thread = std::thread([&i] { i.io.run(); });
  i.maint_thread = std::thread([&i] { i.maintenance(); });
  auto first = i.replica->current();
  asio::post(i.io, [&i, first] { i.apply(*first); });
  i.watch_id = i.replica->watch([&i](const std::shared_ptr<const cms::Snapshot>& snap) {
    asio::post(i.io, [&i, snap] { i.apply(*snap); });
  });
  return Status::ok();
}

void ChatServer::stop() {
  if (!impl_) return;
  Impl& i = *impl_;
  if (!i.io_thread.joinable()) return;
  i.replica->unwatch(i.watch_id);
  {
    std::lock_guard<std::mutex> lock(i.mu);
    i.stopping = true;
  }
  i.cv.notify_all();
  if (i.maint_thread.joinable()) i.maint_thread.join();
  std::promise<void> detached;
  asio::post(i.io, [&i, &detached] {
    for (auto& [fqdn, link] : i.links) link->stop();
    i.links.clear();
    i.hold_timer.cancel();
    detached.set_value();
  });
  detached.get_future().wait_for(std::chrono::seconds(2));
  i.writer->stop();
  i.db->stop();
  i.work.reset();
  i.io.stop();
  i.io_thread.join();
}

nlohmann::json ChatServer::status() {
  Impl& i = *impl_;
  auto p = std::make_shared<std::promise<nlohmann::json>>();
  auto fut = p->get_future();
  asio::post(i.io, [&i, p] {
    const auto& v = i.view;
    nlohmann::json fes = nlohmann::json::array();
    for (const auto& [fqdn, link] : i.links) {
      fes.push_back({{"server", fqdn}, {"address", link->options().host},
                     {"attached", link->isAttached()}});
    }
    auto s = i.muc->stats();
    auto c = i.writer->stats();
    nlohmann::json j = {
        {"server", i.options.server},
        {"pool", v.pool},
        {"service", v.service},
        {"active", v.active},
        {"state", v.state},
        {"active_servers", v.active_servers},
        {"store", {{"name", v.store}, {"addresses", v.store_addresses}, {"database", kMgcDatabase},
                   {"in_use", v.active}}},
        {"frontend_pool", v.frontend_pool},
        {"default_category", v.default_category},
        {"frontends", fes},
        {"rooms_owned", i.muc->loadedRooms()},
        {"occupants", s.occupants},
        {"messages_stored", s.messages_stored},
        {"messages_broadcast", s.messages_broadcast},
        {"compliance_fed", i.compliance_fed.load()},
        {"delivery", {{"held", i.held.size()}, {"undeliverable", i.undeliverable},
                      {"discarded_on_link_loss", i.discarded()},
                      {"path_switches", i.paths.switches()},
                      {"destinations", i.paths.remembered()}}},
        {"schema_ready", i.schema_ready.load()},
        {"commit", {{"batches", c.batches}, {"messages", c.messages}, {"failed", c.failed},
                    {"last_batch_size", c.last_batch_size}, {"max_batch_size", c.max_batch_size},
                    {"last_commit_ms", c.last_commit_ms}, {"queued", c.queued}}}};
    j["reason"] = v.active ? "" : "chat server " + i.options.server +
                                      " is not on the active server list of " + v.pool +
                                      "; it serves no room";
    {
      std::lock_guard<std::mutex> lock(i.mu);
      j["store_error"] = i.last_store_error;
    }
    p->set_value(std::move(j));
  });
  if (fut.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
    return {{"server", i.options.server}, {"error", "the chat service thread did not answer"}};
  }
  return fut.get();
}

void ChatServer::refreshMetrics(rpc::Metrics& m) {
  auto s = status();
  if (s.contains("error")) return;
  m.setGauge("tandem_chat_active", s["active"].get<bool>() ? 1 : 0, {}, "1 when on the active server list");
  m.setGauge("tandem_chat_rooms", static_cast<double>(s["rooms_owned"].size()), {}, "rooms owned and loaded");
  m.setGauge("tandem_chat_occupants", s["occupants"].get<double>(), {}, "occupants in owned rooms");
  m.setGauge("tandem_chat_messages_stored_total", s["messages_stored"].get<double>(), {},
             "groupchat messages committed to mgc");
  m.setGauge("tandem_chat_messages_broadcast_total", s["messages_broadcast"].get<double>(), {},
             "messages broadcast to occupants");
  const auto& c = s["commit"];
  m.setGauge("tandem_chat_commit_batches_total", c["batches"].get<double>(), {}, "group commits");
  m.setGauge("tandem_chat_commit_batch_size", c["last_batch_size"].get<double>(), {},
             "messages in the last group commit");
  m.setGauge("tandem_chat_commit_batch_size_max", c["max_batch_size"].get<double>(), {},
             "largest group commit");
  m.setGauge("tandem_chat_store_latency_ms", c["last_commit_ms"].get<double>(), {},
             "latency of the last group commit (including the mirror)");
  m.setGauge("tandem_chat_commit_failed_total", c["failed"].get<double>(), {},
             "messages refused because the store was unreachable");
  m.setGauge("tandem_chat_compliance_fed_total", s["compliance_fed"].get<double>(), {},
             "messages copied into the compliance queue");
  const auto& dv = s["delivery"];
  m.setGauge("tandem_chat_stanzas_held", dv["held"].get<double>(), {},
             "stanzas waiting for a front end to attach (none is)");
  m.setGauge("tandem_chat_stanzas_undeliverable_total", dv["undeliverable"].get<double>(), {},
             "stanzas dropped after waiting for a front end (or pushed out of a full hold)");
  m.setGauge("tandem_chat_stanzas_discarded_on_link_loss_total",
             dv["discarded_on_link_loss"].get<double>(), {},
             "stanzas queued on a component link that was lost before they were written");
  m.setGauge("tandem_chat_delivery_path_switches_total", dv["path_switches"].get<double>(), {},
             "destinations moved to another front end because theirs detached");
  double attached = 0;
  for (const auto& f : s["frontends"]) attached += f["attached"].get<bool>() ? 1 : 0;
  m.setGauge("tandem_chat_frontends_attached", attached, {}, "front ends this server is attached to");
}

Status ChatServer::health() {
  auto s = status();
  if (s.contains("error")) return unavailable(s["error"].get<std::string>());
  if (!s["active"].get<bool>()) return Status::ok();
  bool any = false;
  for (const auto& f : s["frontends"]) any = any || f["attached"].get<bool>();
  if (!any) {
    return unavailable("chat server " + impl_->options.server +
                       " is active but attached to no front end of " +
                       s["frontend_pool"].get<std::string>());
  }
  if (!s["store_error"].get<std::string>().empty()) {
    return unavailable("chat store unreachable: " + s["store_error"].get<std::string>());
  }
  return Status::ok();
}

// ---- room administration (tandemctl chat room add|remove) -------------------------------------

namespace {

// Hops to the service thread, runs `op` there and waits (10 s at most) for its answer.
Result<bool> onService(asio::io_context& io,
                       std::function<void(MucService::AdminDone)> op) {
  auto p = std::make_shared<std::promise<Result<bool>>>();
  auto fut = p->get_future();
  asio::post(io, [op, p] { op([p](Result<bool> r) { p->set_value(std::move(r)); }); });
  if (fut.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return fail(unavailable("the chat service did not answer within 10 s"));
  }
  return fut.get();
}

Result<std::string> roomName(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto j = xmpp::Jid::parse(lower + "@service.invalid");
  if (lower.empty() || !j || j->local != lower) {
    return fail(invalidArgument("`" + name + "` is not a room name (the localpart of a JID)"));
  }
  return lower;
}

}  // namespace

Result<nlohmann::json> ChatServer::addRoom(const std::string& name, const std::string& category,
                                           const std::string& title) {
  auto room = roomName(name);
  if (!room) return fail(room.error());
  Impl& i = *impl_;
  MucService* muc = i.muc.get();
  std::string r = *room, cat = category.empty() ? std::string(kDefaultCategory) : category;
  auto done = onService(i.io, [muc, r, cat, title](MucService::AdminDone d) {
    muc->adminAddRoom(r, cat, title, std::move(d));
  });
  if (!done) return fail(done.error().withContext("adding room " + r));
  return nlohmann::json{{"room", r}, {"created", *done}, {"server", i.options.server}};
}

Result<nlohmann::json> ChatServer::removeRoom(const std::string& name) {
  auto room = roomName(name);
  if (!room) return fail(room.error());
  Impl& i = *impl_;
  MucService* muc = i.muc.get();
  std::string r = *room;
  auto done = onService(i.io, [muc, r](MucService::AdminDone d) {
    muc->adminRemoveRoom(r, "The room was removed by an administrator.", std::move(d));
  });
  if (!done) return fail(done.error().withContext("removing room " + r));
  if (!*done) return fail(notFound("room `" + r + "` does not exist"));
  return nlohmann::json{{"room", r}, {"removed", true}, {"server", i.options.server}};
}

}  // namespace tandem::chat
