// One include for the tests whichever Catch2 is installed: Debian's 2.13 single header, or Catch2 3.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define TFORMER_CATCH3 1
#else
#include <catch2/catch.hpp>
#endif
