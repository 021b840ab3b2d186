/* config_schema.c -- STUB: the table of configuration keys (config work item). */
#include "config_schema.h"
