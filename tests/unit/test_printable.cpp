// printable(): bytes from files and messages made safe for error messages — printable UTF-8 kept,
// everything else written \xHH, bounded in length.
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "runtime/printable.h"

using namespace convoy;

namespace {

// Every backslash doubled: what printable() makes of a string that is already printable UTF-8.
std::string backslashes_doubled(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '\\' ? std::string("\\\\") : std::string(1, c);
  return out;
}

}  // namespace

TEST_CASE("printable: ASCII and valid UTF-8 are kept", "[printable]") {
  CHECK(printable("") == "");
  CHECK(printable("model/data.pkl") == "model/data.pkl");
  CHECK(printable("__torch__.Net ~!@#$%^&*()_+{}|:\"<>?`-=[];',./") ==
        "__torch__.Net ~!@#$%^&*()_+{}|:\"<>?`-=[];',./");
  CHECK(printable("na\xc3\xafve") == "na\xc3\xafve");  // U+00EF, 2 bytes
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");          // U+00A0, just past C1
  CHECK(printable("\xe2\x98\x83 \xe6\x97\xa5\xe6\x9c\xac") ==
        "\xe2\x98\x83 \xe6\x97\xa5\xe6\x9c\xac");              // 3 bytes
  CHECK(printable("\xf0\x9d\x84\x9e") == "\xf0\x9d\x84\x9e");  // U+1D11E, 4 bytes
  CHECK(printable("\xf4\x8f\xbf\xbf") == "\xf4\x8f\xbf\xbf");  // U+10FFFF, the last
  CHECK(printable("\xef\xbf\xbd") == "\xef\xbf\xbd");          // U+FFFD
}

TEST_CASE("printable: control bytes, DEL and backslashes are escaped", "[printable]") {
  CHECK(printable("a\x1b[31mred") == "a\\x1b[31mred");
  CHECK(printable("line\nnext\ttab\rcr") == "line\\x0anext\\x09tab\\x0dcr");
  CHECK(printable(std::string("nul\0byte", 8)) == "nul\\x00byte");
  CHECK(printable("\x7f") == "\\x7f");
  CHECK(printable("\x1f\x20") == "\\x1f ");
  CHECK(printable("C:\\dir\\x41") == "C:\\\\dir\\\\x41");          // a literal "\x41" stays distinguishable
  CHECK(printable("\xc2\x85\xc2\x9f") == "\\xc2\\x85\\xc2\\x9f");  // C1 controls U+0085, U+009F
}

TEST_CASE("printable: invalid UTF-8 is escaped byte by byte", "[printable]") {
  CHECK(printable("\xff") == "\\xff");
  CHECK(printable("\xfe\xf8\xf5") == "\\xfe\\xf8\\xf5");
  CHECK(printable("\x80") == "\\x80");  // a lone continuation byte
  CHECK(printable("a\xbf"
                  "b") == "a\\xbfb");
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");                    // overlong '/'
  CHECK(printable("\xc1\xbf") == "\\xc1\\xbf");                    // overlong
  CHECK(printable("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");           // overlong, 3 bytes
  CHECK(printable("\xf0\x80\x80\xaf") == "\\xf0\\x80\\x80\\xaf");  // overlong, 4 bytes
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");           // a surrogate, U+D800
  CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // U+110000, too large
  CHECK(printable("\xe2\x98") == "\\xe2\\x98");                    // truncated at the end
  CHECK(printable("\xe2\x98x") == "\\xe2\\x98x");                  // cut short by ASCII
  CHECK(printable("\xe2\xe2\x98\x83") == "\\xe2\xe2\x98\x83");     // a bad lead, then a good one
  CHECK(printable("\xf0\x9d\x84") == "\\xf0\\x9d\\x84");
}

TEST_CASE("printable: at most max_bytes of input are shown", "[printable]") {
  CHECK(kPrintableMaxBytes == 200);
  CHECK(printable(std::string(200, 'a')) == std::string(200, 'a'));
  CHECK(printable(std::string(201, 'a')) == std::string(200, 'a') + "\xe2\x80\xa6");
  CHECK(printable(std::string(100000, 'a')).size() == 200 + 3);
  CHECK(printable("abcdef", 3) == "abc\xe2\x80\xa6");
  CHECK(printable("abc", 3) == "abc");
  // A sequence that straddles the limit is cut, so its first bytes are escaped.
  CHECK(printable("ab\xc3\xa9", 3) == "ab\\xc3\xe2\x80\xa6");
  CHECK(printable("\x1b\x1b\x1b\x1b", 2) == "\\x1b\\x1b\xe2\x80\xa6");
  CHECK(printable("abc", 0) == "\xe2\x80\xa6");
}

TEST_CASE("printable: the output is always printable UTF-8", "[printable]") {
  auto check = [](const std::string& in) {
    std::string out = printable(in, 64);
    INFO("input bytes " << in.size());
    for (unsigned char c : out) REQUIRE((c >= 0x20 && c != 0x7f));
    // Printable UTF-8 passes through again unchanged, but for its backslashes.
    std::string body =
        out.size() >= 3 && out.compare(out.size() - 3, 3, "\xe2\x80\xa6") == 0 && in.size() > 64
            ? out.substr(0, out.size() - 3)
            : out;
    REQUIRE(printable(body, body.size()) == backslashes_doubled(body));
  };
  for (int b = 0; b < 256; ++b) check(std::string(1, static_cast<char>(b)));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(0, 80), byte(0, 255), high(0x80, 0xff);
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    int n = len(rng);
    for (int k = 0; k < n; ++k) s += static_cast<char>(k % 3 == 0 ? byte(rng) : high(rng));
    check(s);
  }
}
