#include "aws/aws_chunked.h"

#include <gtest/gtest.h>
