#include "common/version.h"

#include <png.h>
#include <zstd.h>

#include "git_commit.h"  // generated in the build folder by scripts/git-commit.cmake

namespace ilt {

std::string git_commit() { return ILT_GIT_COMMIT; }

LibraryVersions zstd_version() { return {{"zstd", ZSTD_versionString()}}; }

LibraryVersions libpng_version() { return {{"libpng", png_get_libpng_ver(nullptr)}}; }

std::string version_text(const std::string& tool, const std::vector<LibraryVersions>& libraries) {
  std::string s = tool + " " + ILT_VERSION + " (git " + git_commit() + ")";
  for (const LibraryVersions& group : libraries)
    for (const auto& [name, version] : group) s += "\n" + name + " " + version;
  return s;  // CLI11 ends it with a newline
}

}  // namespace ilt
