// Translating a reference-system cmdlet line (`Set-CsPersistentChatState -Identity "service:X"
// -PoolState FailedOver`) into tandemctl arguments, using the registry in cli.h.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tandem::ctl {

// True for words shaped like Verb-CsNoun.
bool looksLikeCmdlet(const std::string& word);

// args[0] is the cmdlet; the rest are -Param value pairs or -Switch flags. Returns the
// equivalent tandemctl argv (without the program name). InvalidArgument for an unknown cmdlet
// or parameter, naming it.
Result<std::vector<std::string>> translateCmdlet(const std::vector<std::string>& args);

}  // namespace tandem::ctl
