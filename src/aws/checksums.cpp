#include "aws/checksums.h"
