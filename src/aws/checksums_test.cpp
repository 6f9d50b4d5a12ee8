#include "aws/checksums.h"

#include <gtest/gtest.h>
