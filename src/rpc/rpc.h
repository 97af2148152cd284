// The admin transport in one include: AdminServer/Request/Response (server.h), AdminClient
// (client.h), Metrics (metrics.h), deployment certificates and tokens (certs.h).
#pragma once

#include "rpc/certs.h"
#include "rpc/client.h"
#include "rpc/metrics.h"
#include "rpc/server.h"
