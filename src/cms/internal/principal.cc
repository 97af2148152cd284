// poolOfPrincipal: which CMS location a named store is, and whether it is the principal now.
#include "cms/internal/principal.h"

#include "cms/internal/xds.h"

namespace tandem::cms::internal {

Result<std::string> poolOfPrincipal(const topology::Topology& t, const std::string& s,
                                    const std::string& named_as, const std::string& pool,
                                    const std::string& secret, const TypeInstead& type_instead) {
  std::string candidates;
  for (const auto& loc : internal::locationsOf(t)) {
    const topology::Store* st = t.findStore(loc.store);
    if (!st) continue;
    candidates += (candidates.empty() ? "" : ", ") + st->name +
                  (st->mirror.empty() ? "" : " or " + st->mirror) + " (pool " + loc.pool + ")";
    if (s != st->name && s != st->mirror) continue;
    if (!pool.empty() && pool != loc.pool)
      return fail(invalidArgument("store `" + s + "` is the back end of pool `" + loc.pool +
                                  "`, not of pool `" + pool + "`"));
    const bool is_mirror = s != st->name;
    if (named_as == "backup" && is_mirror)
      return fail(invalidArgument("`" + s + "` is the mirror of store `" + st->name +
                                  "`, not pool " + loc.pool + "'s primary back end; name it with "
                                  "-MirrorSqlServerFqdn/-MirrorSqlInstanceName"));
    if (named_as == "mirror" && !is_mirror)
      return fail(invalidArgument("`" + s + "` is pool " + loc.pool + "'s primary back end, "
                                  "not a mirror; name it with "
                                  "-BackupSqlServerFqdn/-BackupSqlInstanceName"));
    auto writable = internal::isWritable(t.findStore(s)->address, secret);
    if (writable && *writable) return loc.pool;
    std::string principal;
    for (const std::string& m : {st->name, st->mirror}) {
      const topology::Store* ms = m.empty() || m == s ? nullptr : t.findStore(m);
      auto w = ms ? internal::isWritable(ms->address, secret) : Result<bool>(false);
      if (w && *w) principal = m;
    }
    const std::string why = writable ? "is not the principal of pool " + loc.pool +
                                           "'s store now (it is read-only, a mirror)"
                                     : "does not answer (" + writable.error().message() + ")";
    if (principal.empty())
      return fail(unavailable("store `" + s + "` " + why + ", and no member of pool " + loc.pool +
                              "'s store is writable; make one the principal first (`tandemctl "
                              "db mirror state --store " + st->name + "`, `tandemctl db failover`)"));
    return fail(failedPrecondition("store `" + s + "` " + why + "; its principal is `" +
                                   principal + "`: type " + type_instead(loc.pool, *st, principal) +
                                   " instead"));
  }
  return fail(invalidArgument("store `" + s + "` cannot hold the CMS; choose the principal of " +
                              candidates));
}

}  // namespace tandem::cms::internal
