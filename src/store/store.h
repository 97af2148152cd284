// The store client library in one include: connections and connection strings, pools,
// transactions, migrations and databases, the change_log outbox. See each header's contract.
#pragma once

#include "store/change_log.h"
#include "store/connection.h"
#include "store/migrations.h"
#include "store/pool.h"
#include "store/transaction.h"
