// TANDEM_CHECK: crash with a message on what cannot happen unless Tandem has a bug (STYLE.md §3).
// Never use it for input from users, peers, files or the network.
#pragma once

#include <cstdio>
#include <cstdlib>

#define TANDEM_CHECK(cond, msg)                                                         \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                   (msg));                                                              \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
