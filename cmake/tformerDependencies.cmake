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

# OpenMP is optional: without it tformer runs on one thread.
if(NOT DEFINED TFORMER_USE_OPENMP OR TFORMER_USE_OPENMP)
  find_package(OpenMP QUIET COMPONENTS CXX)
endif()
if(TFORMER_REQUIRE_OPENMP AND NOT OpenMP_CXX_FOUND)
  message(FATAL_ERROR "tformer was installed with OpenMP, which this compiler does not provide: "
                      "install it with 'apt-get install libomp-dev' (clang) or use g++")
endif()
set(TFORMER_HAS_OPENMP ${OpenMP_CXX_FOUND})
