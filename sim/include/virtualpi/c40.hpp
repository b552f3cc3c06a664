// The FACTORY_UUID c40 encoding as the device writes it (docs/protocol.md §5.6):
// the model's own encoder and a decoder used only
// to check it. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace virtualpi {

// "001000911006186073" -> "19a519a6_19ab520e_1ac0212b". Characters are packed
// in triples (h = 1600a + 40b + c + 1), first triple in the low half of a
// word, second in the high half; an odd final triple leaves the high half 0;
// words are lower-case hex joined with '_'. Throws
// rpiboot::Error(InvalidArgument) for characters outside 0-9 and A-Z or a
// length that is not a multiple of 3.
std::string c40Encode(std::string_view text);
// Inverse of c40Encode; nullopt for anything invalid.
std::optional<std::string> c40Decode(std::string_view encoded);

}  // namespace virtualpi
