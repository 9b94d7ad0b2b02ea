#pragma once
// Hex encoding for the registry's sources (keys, salts, MACs). Internal: not a public header.
#include <optional>
#include <string>
#include <string_view>

namespace lostcard::cloud::detail {

std::string toHex(std::string_view bytes);
// std::nullopt for odd length or a non-hex character.
std::optional<std::string> fromHex(std::string_view hex);

}  // namespace lostcard::cloud::detail
