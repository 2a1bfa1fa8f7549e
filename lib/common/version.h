// What --version prints: the project version, the git commit the build came from, and the
// versions of the libraries that shape a tool's output (one "NAME VERSION" line each).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace ilt {

using LibraryVersions = std::vector<std::pair<std::string, std::string>>;  // {"zstd", "1.5.4"}

// The commit the build came from ("1a2b3c4d5e6f", "-dirty" appended when the tree had
// uncommitted changes), or "unknown" outside a git checkout. Updated on every build.
std::string git_commit();

// Libraries every tool reads or writes shards with (zstd) and PNG files with (libpng), as
// loaded at run time.
LibraryVersions zstd_version();
LibraryVersions libpng_version();

// "TOOL 0.1.0 (git 1a2b3c4d5e6f)" then a line "NAME VERSION" for each library. help2man reads the
// first line as the program's name and version.
std::string version_text(const std::string& tool, const std::vector<LibraryVersions>& libraries);

}  // namespace ilt
