// Catch2 v2/v3 compatibility: include this instead of Catch2's own headers.
#pragma once
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif
#include <string>

// The message of the exception thrown by `expr` (empty if none).
#define ILT_ERROR_OF(expr)                 \
  [&]() -> std::string {                   \
    try {                                  \
      expr;                                \
    } catch (const std::exception& e) {    \
      return e.what();                     \
    }                                      \
    return std::string();                  \
  }()
