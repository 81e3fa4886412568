# Finds tformer's dependencies; used by the build and by the installed package config.
# A missing dependency stops configuration with one line naming the Debian package to install.

macro(_tformer_require _pkg _debian)
  find_package(${_pkg} ${ARGN} QUIET CONFIG)
  if(NOT ${_pkg}_FOUND)
    message(FATAL_ERROR "tformer needs ${_pkg} ${ARGN}: install it with 'apt-get install ${_debian}'")
  endif()
endmacro()

_tformer_require(Eigen3 libeigen3-dev 3.4)
_tformer_require(xsimd libxsimd-dev 8)
# Debian's xsimd 8.1 package is built with xtl support and lists "xtl" in its link interface,
# which becomes a bogus -lxtl unless an xtl target exists. tformer does not use xtl's complex
# types, so without an xtl package we drop that entry.
if(TARGET xsimd AND NOT TARGET xtl)
  find_package(xtl QUIET CONFIG)
  if(NOT TARGET xtl)
    get_target_property(_tformer_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
    if(_tformer_xsimd_links)
      list(REMOVE_ITEM _tformer_xsimd_links xtl)
      set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_tformer_xsimd_links}")
    endif()
  endif()
endif()
_tformer_require(nlohmann_json nlohmann-json3-dev 3)

# Threads: tformer's loops run on its own pool of std::threads (include/tformer/core/thread_pool.hpp).
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# Optional compiled libraries for the opt-in targets (the core needs none of them):
#   tformer::text  (tokenizers)          PCRE2 (regular expressions), utf8proc (Unicode)
#   tformer::audio (speech front ends)   libsndfile (audio files), libsamplerate (resampling)
# Each is an imported target tformer_dep::<name> when its header and library are found.
function(_tformer_find_library _name _header _library)
  if(TARGET tformer_dep::${_name})
    return()
  endif()
  find_path(TFORMER_${_name}_INCLUDE_DIR ${_header})
  find_library(TFORMER_${_name}_LIBRARY NAMES ${_library})
  if(TFORMER_${_name}_INCLUDE_DIR AND TFORMER_${_name}_LIBRARY)
    add_library(tformer_dep::${_name} UNKNOWN IMPORTED)
    set_target_properties(tformer_dep::${_name} PROPERTIES
      IMPORTED_LOCATION "${TFORMER_${_name}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${TFORMER_${_name}_INCLUDE_DIR}")
  endif()
endfunction()
_tformer_find_library(pcre2 pcre2.h pcre2-8)
_tformer_find_library(utf8proc utf8proc.h utf8proc)
_tformer_find_library(sndfile sndfile.h sndfile)
_tformer_find_library(samplerate samplerate.h samplerate)
set(TFORMER_HAS_TEXT OFF)
if(TARGET tformer_dep::pcre2 AND TARGET tformer_dep::utf8proc)
  set(TFORMER_HAS_TEXT ON)
endif()
set(TFORMER_HAS_AUDIO OFF)
if(TARGET tformer_dep::sndfile AND TARGET tformer_dep::samplerate)
  set(TFORMER_HAS_AUDIO ON)
endif()
if(TFORMER_REQUIRE_TEXT AND NOT TFORMER_HAS_TEXT)
  message(FATAL_ERROR "tformer::text needs PCRE2 and utf8proc: install them with 'apt-get install libpcre2-dev libutf8proc-dev'")
endif()
if(TFORMER_REQUIRE_AUDIO AND NOT TFORMER_HAS_AUDIO)
  message(FATAL_ERROR "tformer::audio needs libsndfile and libsamplerate: install them with "
                      "'apt-get install libsndfile1-dev libsamplerate0-dev'")
endif()
