#include "aws/aws_chunked.h"
