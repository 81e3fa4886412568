// tformer: version, feature detection and the debug assertion macro.
// The version is written here once; CMake reads it from this file.
#pragma once

#define TFORMER_VERSION_MAJOR 0
#define TFORMER_VERSION_MINOR 1
#define TFORMER_VERSION_PATCH 0

#define TFORMER_VERSION (TFORMER_VERSION_MAJOR * 10000 + TFORMER_VERSION_MINOR * 100 + TFORMER_VERSION_PATCH)

// Hot-path invariants. Checked only in debug builds (or with TFORMER_ENABLE_ASSERTS); user input
// is validated separately by always-on checks that throw (see core/error.hpp). A failed assertion
// throws tformer::internal_error (core/error.hpp, which every user of the macro includes) rather
// than aborting: library code never ends the process.
#if !defined(NDEBUG) || defined(TFORMER_ENABLE_ASSERTS)
#define TFORMER_ASSERT(cond)                                                                   \
  do {                                                                                         \
    if (!(cond)) ::tformer::detail::assertion_failed(#cond, __FILE__, __LINE__);               \
  } while (0)
#else
#define TFORMER_ASSERT(cond) ((void)0)
#endif

#define TFORMER_DETAIL_STR2(x) #x
#define TFORMER_DETAIL_STR(x) TFORMER_DETAIL_STR2(x)

namespace tformer {
/// @brief The library version as "major.minor.patch", made from the macros above.
inline constexpr const char* version_string = TFORMER_DETAIL_STR(TFORMER_VERSION_MAJOR) "." TFORMER_DETAIL_STR(
    TFORMER_VERSION_MINOR) "." TFORMER_DETAIL_STR(TFORMER_VERSION_PATCH);
}  // namespace tformer
