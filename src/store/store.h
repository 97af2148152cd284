// The store client library in one include: connections and connection strings, pools,
// transactions, migrations and databases. See each header's contract.
#pragma once

#include "store/connection.h"
#include "store/migrations.h"
#include "store/pool.h"
#include "store/transaction.h"
