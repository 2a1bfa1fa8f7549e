// Catch2 v2 needs one translation unit that defines main().
#define CATCH_CONFIG_MAIN
#include "catch.h"
