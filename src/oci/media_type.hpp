#pragma once
// Media types as OCI requires them (RFC 6838 section 4.2 names, RFC 9110 parameters): the check applied
// to every media type that comes from outside (an upstream's Content-Type, a manifest's mediaType).
#include <optional>
#include <string>
#include <string_view>

namespace wharf::oci {

// True if `s` is exactly "type/subtype" with RFC 6838 restricted names (1-127 characters each, first a
// letter or digit, then letters, digits and !#$&-^_.+); false for anything else, parameters included.
bool valid_media_type(std::string_view s);

// The media type of a Content-Type header value: "type/subtype" (as sent, without parameters) when the
// type is valid and any parameters are well-formed (token=token or token="quoted"); nullopt otherwise
// (control characters, bad names, a stray ';').
std::optional<std::string> media_type_of(std::string_view content_type);

}  // namespace wharf::oci
