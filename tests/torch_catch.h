// For tests that use LibTorch: Debian's LibTorch pulls in glog, whose CHECK macro would
// shadow Catch2's. Include this instead of catch.h, after nothing else.
#pragma once
#include <torch/types.h>
#undef CHECK
#include "catch.h"
